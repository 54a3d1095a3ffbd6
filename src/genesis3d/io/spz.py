"""Niantic .spz: gzip-compressed, quantised Gaussian splats, written by our own code from
the format's public description (nianticlabs/spz README, "File Format").

A gzip stream of a 16-byte header (little-endian: magic ``NGSP`` = 0x5053474e, version,
point count as uint32; SH degree, fractional bits, flags, reserved as uint8) followed by
the attributes of all points, one attribute after the other:

| attribute | bytes per point | encoding |
| --- | --- | --- |
| positions | 9 | x, y, z as 24-bit signed fixed point with ``fractionalBits`` fraction bits |
| alphas | 1 | opacity x 255 |
| colours | 3 | SH band 0 x (0.15 x 255) + 127.5 |
| scales | 3 | (log scale + 10) x 16 |
| rotations | 4 (v3) / 3 (v2) | v3: index of the largest of (x, y, z, w) in the top 2 bits, then the other three in order, 10 bits each (sign bit, 9-bit magnitude / sqrt(1/2)), the largest made positive; v2: x, y, z x 127.5 + 127.5 with w >= 0 |
| SH | 3k | coefficient-major, channel fastest, x 128 + 128; band 1 kept to 5 bits, higher bands to 4 bits (zeroed low bits compress better) |

All values are rounded and clipped to 0..255. Flag 0x1 marks antialiased training; flag
0x2 (vendor extensions, whose stream layout has changed between library releases) is
refused, as are the uncompressed NGSP containers of version 4. The frame is RUB, the same
as the world frame, so nothing is turned.
"""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np

from genesis3d.assets import SplatAsset
from genesis3d.errors import ConfigError, FormatError
from genesis3d.io.atomic import Destination, Source, read_source, write_output

MAGIC = 0x5053474E
HEADER = struct.Struct("<IIIBBBB")
COLOR_SCALE = 0.15
FRACTIONAL_BITS = 12
_SQRT1_2 = float(np.sqrt(0.5))
_MASK9 = (1 << 9) - 1
_FLAG_ANTIALIASED = 0x1
_FLAG_EXTENSIONS = 0x2
_REST_FOR_DEGREE = {0: 0, 1: 3, 2: 8, 3: 15, 4: 24}


def _u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _pack_rotations_v3(quaternions_xyzw: np.ndarray) -> np.ndarray:
    q = quaternions_xyzw / np.linalg.norm(quaternions_xyzw, axis=1, keepdims=True)
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None]  # -q is the same rotation
    packed = largest.astype(np.uint64)
    for i in range(4):
        keep = largest != i
        magnitude = np.floor(_MASK9 * np.abs(q[:, i]) / _SQRT1_2 + 0.5).astype(np.uint64)
        field = ((q[:, i] < 0).astype(np.uint64) << np.uint64(9)) | np.minimum(magnitude, _MASK9)
        packed = np.where(keep, (packed << np.uint64(10)) | field, packed)
    return packed.astype("<u4").view(np.uint8).reshape(-1, 4)


def _unpack_rotations_v3(raw: np.ndarray) -> np.ndarray:
    packed = raw.reshape(-1, 4).copy().view("<u4")[:, 0].astype(np.uint64)
    largest = (packed >> np.uint64(30)).astype(np.int64)
    q = np.zeros((len(packed), 4))
    for i in range(3, -1, -1):
        skip = largest == i
        magnitude = (packed & np.uint64(_MASK9)).astype(np.float64)
        negative = ((packed >> np.uint64(9)) & np.uint64(1)).astype(bool)
        value = _SQRT1_2 * magnitude / _MASK9 * np.where(negative, -1.0, 1.0)
        q[:, i] = np.where(skip, 0.0, value)
        packed = np.where(skip, packed, packed >> np.uint64(10))
    rows = np.arange(len(q))
    q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (q**2).sum(axis=1)))
    return q


def encode(
    splats: SplatAsset, *, version: int = 3, compression_level: int = 6, antialiased: bool = False
) -> bytes:
    """The bytes of an .spz file of ``splats``.

    Args:
        splats: the splats.
        version: 3 (smallest-three rotations, the current version) or 2.
        compression_level: gzip level 1 (fastest) to 9 (smallest).
        antialiased: set the flag saying the splats were trained with antialiasing.

    Raises:
        ConfigError: for an unknown version or level, or positions beyond the 24-bit range.
    """
    if version not in (2, 3):
        raise ConfigError(f"spz version must be 2 or 3, got {version}")
    if not 1 <= compression_level <= 9:
        raise ConfigError(f"compression_level must be between 1 and 9, got {compression_level}")
    n = splats.n_splats
    fixed = np.round(splats.means.astype(np.float64) * (1 << FRACTIONAL_BITS)).astype(np.int64)
    limit = 1 << 23
    if n and (fixed.min() < -limit or fixed.max() >= limit):
        raise ConfigError(
            f"spz holds positions within +-{limit / (1 << FRACTIONAL_BITS):.0f} m, got up to "
            f"{np.abs(splats.means).max():.0f} m; scale the splats down first"
        )
    positions = (fixed.astype("<i4").view(np.uint8).reshape(n, 3, 4)[:, :, :3]).reshape(-1)
    alphas = _u8(splats.opacities * 255.0)
    colors = _u8(splats.sh0 * (COLOR_SCALE * 255.0) + 127.5).reshape(-1)
    scales = _u8((np.log(splats.scales.astype(np.float64)) + 10.0) * 16.0).reshape(-1)
    xyzw = splats.rotations[:, [1, 2, 3, 0]].astype(np.float64)
    if version == 3:
        rotations = _pack_rotations_v3(xyzw).reshape(-1) if n else np.zeros(0, np.uint8)
    else:
        xyzw = xyzw / np.linalg.norm(xyzw, axis=1, keepdims=True)
        xyzw = xyzw * np.where(xyzw[:, 3:] < 0, -1.0, 1.0)
        rotations = _u8(xyzw[:, :3] * 127.5 + 127.5).reshape(-1)
    degree = splats.sh_degree
    sh = np.zeros(0, np.uint8)
    if degree:
        values = np.round(splats.sh_rest.astype(np.float64) * 128.0) + 128.0
        # Keep 5 bits of band 1 and 4 bits of higher bands, as the reference encoder does.
        bucket = np.where(np.arange(splats.sh_rest.shape[1]) < 3, 8, 16)[None, :, None]
        sh = np.clip((values + bucket // 2) // bucket * bucket, 0, 255).astype(np.uint8).reshape(-1)
    flags = _FLAG_ANTIALIASED if antialiased else 0
    header = HEADER.pack(MAGIC, version, n, degree, FRACTIONAL_BITS, flags, 0)
    body = b"".join(
        [
            header,
            positions.tobytes(),
            alphas.tobytes(),
            colors.tobytes(),
            scales.tobytes(),
            rotations.tobytes(),
            sh.tobytes(),
        ]
    )
    return gzip.compress(body, compresslevel=compression_level, mtime=0)


def write_spz(
    splats: SplatAsset,
    destination: Destination,
    *,
    version: int = 3,
    compression_level: int = 6,
    antialiased: bool = False,
) -> None:
    """Write ``splats`` as an .spz file, atomically or to a binary stream.

    Args:
        splats: the splats; metadata is not stored.
        destination: a path or a binary stream.
        version, compression_level, antialiased: as in :func:`encode`.

    Raises:
        ConfigError: see :func:`encode`.
    """
    data = encode(
        splats, version=version, compression_level=compression_level, antialiased=antialiased
    )
    write_output(data, destination)


def decode(data: bytes, source: str = "<bytes>") -> SplatAsset:
    """Decode .spz bytes (versions 2 and 3).

    Raises:
        FormatError: for bytes that are not a complete .spz stream.
    """
    if data[:4] == b"NGSP":
        raise FormatError(
            f"{source} is an uncompressed NGSP container (.spz version 4 or later); Genesis "
            "reads the gzip .spz versions 2 and 3 (re-save it with version 3)"
        )
    try:
        body = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise FormatError(
            f"{source} is not a valid .spz file (gzip stream broken: {error})"
        ) from error
    if len(body) < HEADER.size:
        raise FormatError(f"{source} is not a valid .spz file (too short for its header)")
    magic, version, n, degree, fractional, flags, _ = HEADER.unpack_from(body)
    if magic != MAGIC:
        raise FormatError(
            f"{source} is gzip data but not .spz (magic {magic:#x}, expected {MAGIC:#x})"
        )
    if version not in (2, 3):
        raise FormatError(
            f"{source} is .spz version {version}; Genesis reads versions 2 and 3 (re-save it with version 3)"
        )
    if flags & _FLAG_EXTENSIONS:
        raise FormatError(
            f"{source} carries .spz vendor extensions (flag 0x2), which Genesis does not read; "
            "re-save it without extensions"
        )
    if degree not in _REST_FOR_DEGREE:
        raise FormatError(f"{source} has SH degree {degree}; the format defines 0 to 4")
    if degree == 4:
        raise FormatError(f"{source} has SH degree 4; Genesis assets hold at most degree 3")
    if not 0 <= fractional <= 23:
        raise FormatError(f"{source} has {fractional} fractional bits; expected 0 to 23")
    k = _REST_FOR_DEGREE[degree]
    rotation_bytes = 4 if version == 3 else 3
    sizes = [9 * n, n, 3 * n, 3 * n, rotation_bytes * n, 3 * k * n]
    if HEADER.size + sum(sizes) > len(body):
        raise FormatError(
            f"{source} is truncated: {n} splats need {HEADER.size + sum(sizes)} bytes, the stream has {len(body)}"
        )
    parts, offset = [], HEADER.size
    for size in sizes:
        parts.append(np.frombuffer(body, np.uint8, count=size, offset=offset))
        offset += size
    raw_positions, alphas, colors, scales, raw_rotations, sh = parts
    padded = np.zeros((n * 3, 4), np.uint8)
    padded[:, :3] = raw_positions.reshape(-1, 3)
    padded[:, 3] = np.where(padded[:, 2] & 0x80, 0xFF, 0)  # sign-extend 24 to 32 bits
    means = (padded.view("<i4").reshape(n, 3).astype(np.float64) / (1 << fractional)).astype(
        np.float32
    )
    if version == 3:
        xyzw = _unpack_rotations_v3(raw_rotations)
    else:
        xyz = raw_rotations.reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        xyzw = np.concatenate(
            [xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz**2).sum(axis=1)))[:, None]], axis=1
        )
    wxyz = xyzw[:, [3, 0, 1, 2]]
    wxyz /= np.maximum(np.linalg.norm(wxyz, axis=1, keepdims=True), 1e-12)
    sh_rest = None
    if k:
        sh_rest = (sh.reshape(n, k, 3).astype(np.float32) - 128.0) / 128.0
    return SplatAsset(
        means=means,
        scales=np.exp(scales.reshape(n, 3).astype(np.float64) / 16.0 - 10.0),
        rotations=wxyz,
        opacities=alphas.astype(np.float32) / 255.0,
        sh0=(colors.reshape(n, 3).astype(np.float32) / 255.0 - 0.5) / COLOR_SCALE,
        sh_rest=sh_rest,
        metadata={"antialiased": bool(flags & _FLAG_ANTIALIASED)},
    )


def read_spz(source: Source) -> SplatAsset:
    """Read an .spz file or its bytes (see :func:`decode`).

    Raises:
        InputError: a path that does not exist.
        FormatError: see :func:`decode`.
    """
    data, name = read_source(source)
    return decode(data, name)
