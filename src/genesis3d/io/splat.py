"""antimatter15 .splat: 32-byte records, no header, no spherical harmonics.

Layout of each record (little-endian), as the format's reference converter
(antimatter15/splat ``convert.py``) writes it from an INRIA PLY:

| bytes | field |
| --- | --- |
| 0-11 | position x, y, z: float32 |
| 12-23 | scale x, y, z: float32, linear (exp of the PLY's log-scales) |
| 24-27 | colour R, G, B, A: uint8; RGB = 0.5 + SH_C0 * sh0 (band 0 only), A = opacity |
| 28-31 | rotation w, x, y, z: uint8 = q / ||q|| * 128 + 128, clipped to 0..255 |

Records are sorted by decreasing opacity x volume (volume = product of the three scales),
as the reference converter sorts them, so viewers that stream the file draw the most
visible splats first. We round where the reference truncates (half a step less error).
Positions and rotations are in the RDF frame of 3DGS files, like PLY splats (see
:mod:`genesis3d.io._splat_frame`). Higher SH bands and metadata are not stored.
"""

from __future__ import annotations

import numpy as np

from genesis3d.assets import SplatAsset
from genesis3d.errors import FormatError
from genesis3d.io._splat_frame import flip
from genesis3d.io.atomic import Destination, Source, read_source, write_output

RECORD = np.dtype(
    [
        ("position", "<f4", (3,)),
        ("scale", "<f4", (3,)),
        ("color", "u1", (4,)),
        ("rotation", "u1", (4,)),
    ]
)


def visibility_order(splats: SplatAsset) -> np.ndarray:
    """Indices of the splats by decreasing opacity x volume, the order .splat records take.

    Returns:
        (n,) int64 permutation (stable for ties).
    """
    weight = splats.opacities.astype(np.float64) * np.prod(splats.scales.astype(np.float64), axis=1)
    return np.argsort(-weight, kind="stable")


def encode(splats: SplatAsset) -> bytes:
    """The bytes of a .splat file of ``splats`` (higher SH bands are dropped)."""
    means, rotations = flip(splats.means, splats.rotations)
    order = visibility_order(splats)
    records = np.empty(splats.n_splats, RECORD)
    records["position"] = means[order]
    records["scale"] = splats.scales[order]
    color = np.concatenate([splats.colors(), splats.opacities[:, None]], axis=1)[order]
    records["color"] = np.clip(np.round(color * 255.0), 0, 255).astype(np.uint8)
    quantised = np.round(rotations[order].astype(np.float64) * 128.0 + 128.0)
    records["rotation"] = np.clip(quantised, 0, 255).astype(np.uint8)
    return records.tobytes()


def write_splat(splats: SplatAsset, destination: Destination) -> None:
    """Write ``splats`` as a .splat file, atomically or to a binary stream.

    Args:
        splats: the splats; SH bands above 0 and metadata are dropped.
        destination: a path or a binary stream.
    """
    write_output(encode(splats), destination)


def decode(data: bytes, source: str = "<bytes>") -> SplatAsset:
    """Decode .splat bytes.

    Args:
        data: the file content.
        source: a name for messages.

    Returns:
        The splats in the world frame, in file order, with renormalised rotations.

    Raises:
        FormatError: when the size is not a whole number of records or scales are invalid.
    """
    if len(data) % RECORD.itemsize:
        raise FormatError(
            f"{source} is not a .splat file: its size {len(data)} is not a multiple of "
            f"{RECORD.itemsize} bytes (it may be truncated)"
        )
    records = np.frombuffer(data, RECORD)
    rotations = (records["rotation"].astype(np.float64) - 128.0) / 128.0
    norms = np.linalg.norm(rotations, axis=1, keepdims=True)
    rotations = np.where(norms > 0, rotations / np.maximum(norms, 1e-30), [1.0, 0.0, 0.0, 0.0])
    positions = records["position"]
    scales = records["scale"]
    if not (np.isfinite(positions).all() and np.isfinite(scales).all() and (scales > 0).all()):
        raise FormatError(
            f"{source} is not a valid .splat file: positions must be finite and scales "
            "positive (is it really a .splat file?)"
        )
    means, rotations = flip(positions, rotations)
    color = records["color"].astype(np.float32) / 255.0
    return SplatAsset(
        means=means,
        scales=scales,
        rotations=rotations,
        opacities=color[:, 3],
        sh0=SplatAsset.sh0_from_colors(color[:, :3]),
    )


def read_splat(source: Source) -> SplatAsset:
    """Read a .splat file or its bytes (see :func:`decode`).

    Raises:
        InputError: a path that does not exist.
        FormatError: see :func:`decode`.
    """
    data, name = read_source(source)
    return decode(data, name)
