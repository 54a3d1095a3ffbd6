""".spz (Niantic): round trips within the quantisation, and hand-built known answers."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from genesis3d import io
from genesis3d.errors import ConfigError, FormatError
from genesis3d.io import spz
from tests.support import random_splats, same_rotations


def _header(version, count, degree=0, fractional=12, flags=0):
    return struct.pack("<IIIBBBB", 0x5053474E, version, count, degree, fractional, flags, 0)


def _fixed24(value: int) -> bytes:
    return value.to_bytes(3, "little", signed=True)


@pytest.mark.parametrize(("version", "degree"), [(3, 0), (3, 3), (2, 1)])
def test_round_trip_within_quantisation(tmp_path, version, degree):
    splats = random_splats(degree=degree)
    path = io.save(splats, tmp_path / "s.spz", version=version)
    back = io.load(path)
    assert back.sh_degree == degree
    np.testing.assert_allclose(back.means, splats.means, atol=0.5 / 4096 + 1e-7)  # 12 bits
    np.testing.assert_allclose(back.opacities, splats.opacities, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(np.log(back.scales), np.log(splats.scales), atol=0.5 / 16 + 1e-6)
    color_step = 0.5 / (0.15 * 255)
    representable = np.clip(splats.sh0, -127.5 / 38.25, 127.5 / 38.25)
    np.testing.assert_allclose(back.sh0, representable, atol=color_step + 1e-6)
    # v3: 9-bit magnitudes of components up to sqrt(1/2); v2: 8-bit x, y, z.
    assert same_rotations(back.rotations, splats.rotations, 1e-4 if version == 3 else 5e-3)
    if degree:
        # Band 1 is kept to 5 bits (steps of 8/128), higher bands to 4 bits (16/128).
        band = np.where(np.arange(splats.sh_rest.shape[1]) < 3, 4.5, 8.5)[None, :, None] / 128
        assert (np.abs(back.sh_rest - splats.sh_rest) <= band).all()


def test_decodes_a_hand_built_version_2_file():
    # One splat built byte by byte from the format description, independent of our encoder.
    body = _header(2, 1)
    body += _fixed24(4096) + _fixed24(-2048) + _fixed24(0)  # 1, -0.5, 0 with 12 fraction bits
    body += bytes([255])  # alpha
    body += bytes([128, 128, 166])  # colour: sh0 = (u / 255 - 0.5) / 0.15
    body += bytes([160, 160, 112])  # scale: log = u / 16 - 10 = 0, 0, -3
    body += bytes([128, 128, 128])  # x = y = z = 0.0039 -> almost the identity
    splats = spz.decode(gzip.compress(body))
    np.testing.assert_allclose(splats.means, [[1.0, -0.5, 0.0]])
    np.testing.assert_allclose(splats.opacities, [1.0])
    np.testing.assert_allclose(splats.scales, [[1.0, 1.0, np.exp(-3.0)]], rtol=1e-6)
    expected = [(128 / 255 - 0.5) / 0.15, (128 / 255 - 0.5) / 0.15, (166 / 255 - 0.5) / 0.15]
    np.testing.assert_allclose(splats.sh0, [expected], atol=1e-6)
    np.testing.assert_allclose(splats.rotations, [[1, 0, 0, 0]], atol=1e-2)
    assert splats.metadata == {"antialiased": False}


def test_decodes_a_hand_built_version_3_file_with_sh():
    # Two splats; SH degree 1; flag 0x1 (antialiased); 8 fraction bits.
    body = _header(3, 2, degree=1, fractional=8, flags=1)
    body += _fixed24(256) + _fixed24(0) + _fixed24(-128)  # 1, 0, -0.5
    body += _fixed24(0) + _fixed24(512) + _fixed24(0)  # 0, 2, 0
    body += bytes([0, 51])  # alphas
    body += bytes([127, 127, 127, 255, 0, 127])  # colours
    body += bytes([160] * 6)  # scales: 1
    # Rotation 1: identity, (x, y, z, w) = (0, 0, 0, 1): largest index 3, all three stored
    # components zero -> word 3 << 30.
    # Rotation 2: a quarter turn about x, (s, 0, 0, s) with s = sqrt(1/2): largest is x (index
    # 0, the first of the equal two); stored y, z, w in that order, w = 511 (s / sqrt(1/2))
    # in the lowest 10 bits with its sign bit clear.
    body += struct.pack("<I", 3 << 30) + struct.pack("<I", (0 << 30) | 511)
    sh = np.full((2, 3, 3), 128, np.uint8)
    sh[1, 0] = [192, 64, 128]  # first coefficient of splat 2: +0.5, -0.5, 0 for R, G, B
    body += sh.tobytes()
    splats = spz.decode(gzip.compress(body))
    np.testing.assert_allclose(splats.means, [[1, 0, -0.5], [0, 2, 0]])
    np.testing.assert_allclose(splats.opacities, [0, 0.2])
    np.testing.assert_allclose(
        splats.sh0[1], [(1 - 0.5) / 0.15, -0.5 / 0.15, (127 / 255 - 0.5) / 0.15], atol=1e-6
    )
    np.testing.assert_allclose(splats.scales, np.ones((2, 3)), rtol=1e-6)
    s = np.sqrt(0.5)
    np.testing.assert_allclose(splats.rotations, [[1, 0, 0, 0], [s, s, 0, 0]], atol=1e-6)  # wxyz
    np.testing.assert_allclose(splats.sh_rest[1, 0], [0.5, -0.5, 0])
    np.testing.assert_allclose(splats.sh_rest[0], 0)
    assert splats.metadata == {"antialiased": True}


def test_version_3_rotation_bits_follow_the_spec():
    # A quarter turn about z: (x, y, z, w) = (0, 0, s, s). The largest index is the first of
    # the two equal components (z = 2); x, y, w are stored, w in the lowest bits.
    s = np.sqrt(0.5)
    packed = spz._pack_rotations_v3(np.array([[0.0, 0.0, s, s], [0.0, 0.0, -s, -s]]))
    words = packed.view("<u4")[:, 0]
    assert (words == (2 << 30) | 511).all()  # -q is written as q: the largest is made positive


def test_header_fields_and_options(tmp_path):
    splats = random_splats(n=300, degree=1)
    fast = spz.encode(splats, compression_level=1)
    small = spz.encode(splats, compression_level=9, antialiased=True)
    header = struct.unpack("<IIIBBBB", gzip.decompress(small)[:16])
    assert header == (0x5053474E, 3, 300, 1, 12, 1, 0)
    assert gzip.decompress(fast)[16:] == gzip.decompress(small)[16:]
    assert len(small) <= len(fast)
    assert spz.encode(splats) == spz.encode(splats)  # deterministic (no gzip time stamp)
    with pytest.raises(ConfigError, match="between 1 and 9"):
        spz.encode(splats, compression_level=0)
    with pytest.raises(ConfigError, match="version must be 2 or 3"):
        spz.encode(splats, version=4)
    far = random_splats(n=1)
    far.means = np.array([[3000.0, 0, 0]], np.float32)
    with pytest.raises(ConfigError, match="scale the splats down"):
        spz.encode(far)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(_header(3, 10)), "truncated"),
        (gzip.compress(_header(5, 0)), "version 5"),
        (gzip.compress(_header(3, 0, flags=2)), "extensions"),
        (gzip.compress(_header(3, 0, degree=4)), "degree 4"),
        (gzip.compress(b"NGSQ" + bytes(12)), "not .spz"),
        (b"NGSP" + bytes(28), "version 4"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "gzip stream broken"),
        (gzip.compress(bytes(8)), "too short"),
    ],
)
def test_broken_files_raise_format_error(data, message):
    with pytest.raises(FormatError, match=message):
        spz.decode(data)
