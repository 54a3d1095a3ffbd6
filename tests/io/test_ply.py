"""PLY: INRIA-layout splats in the RDF file frame, triangle meshes, and foreign files."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d import io
from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import FormatError
from genesis3d.io import ply
from tests.support import random_splats, same_rotations, textured_box


def _body(data: bytes) -> bytes:
    return data[data.index(b"end_header\n") + len(b"end_header\n") :]


def _header_names(data: bytes) -> list[str]:
    header = data.split(b"end_header")[0].decode()
    return [line.split()[-1] for line in header.splitlines() if line.startswith("property")]


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_splat_round_trip(tmp_path, degree):
    splats = random_splats(degree=degree)
    back = io.load(io.save(splats, tmp_path / "s.ply"))
    assert isinstance(back, SplatAsset) and back.sh_degree == degree
    np.testing.assert_array_equal(back.means, splats.means)  # the frame flip is exact
    np.testing.assert_allclose(back.scales, splats.scales, rtol=1e-6)
    np.testing.assert_allclose(back.opacities, splats.opacities, atol=1e-6)
    np.testing.assert_array_equal(back.sh0, splats.sh0)
    assert same_rotations(back.rotations, splats.rotations, 1e-6)
    if degree:
        np.testing.assert_array_equal(back.sh_rest, splats.sh_rest)
    assert back.metadata == splats.metadata


def test_splats_are_stored_in_the_rdf_frame(tmp_path):
    # A splat at world +Y (up), stretched along world Y, turned 90 degrees about world Y.
    s = np.sqrt(0.5)
    splats = SplatAsset(
        means=[[0.1, 0.5, 0.25]],
        scales=[[0.01, 0.2, 0.01]],
        rotations=[[s, 0, s, 0]],
        opacities=[0.5],
        sh0=[[0, 0, 0]],
    )
    data = io.save(splats, tmp_path / "up.ply").read_bytes()
    assert b"comment genesis3d frame RDF\n" in data
    row = np.frombuffer(_body(data), "<f4")
    np.testing.assert_allclose(row[:3], [0.1, -0.5, -0.25])  # world up is RDF -y
    # The Gaussian itself is turned too: its covariance in the file is F C F^T (F = the flip).
    flip = np.diag([1.0, -1.0, -1.0])
    world = _covariance(splats.rotations[0], splats.scales[0])
    np.testing.assert_allclose(
        _covariance(row[-4:], np.exp(row[-7:-4])), flip @ world @ flip, atol=1e-7
    )
    # Stretched along world Y (up) before the turn about Y: still along Y, now RDF's y.
    np.testing.assert_allclose(np.abs(np.linalg.eigh(world)[1][:, -1]), [0, 1, 0], atol=1e-6)


def _covariance(quaternion: np.ndarray, scales: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(quaternion, np.float64) / np.linalg.norm(quaternion)
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rotation @ np.diag(np.asarray(scales, np.float64) ** 2) @ rotation.T


def test_splat_header_is_the_inria_layout(tmp_path):
    data = io.save(random_splats(degree=3), tmp_path / "s.ply").read_bytes()
    assert data.startswith(b"ply\nformat binary_little_endian 1.0\n")
    names = _header_names(data)
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:54] == [f"f_rest_{i}" for i in range(45)]
    assert names[54:] == ["opacity", "scale_0", "scale_1", "scale_2"] + [
        f"rot_{i}" for i in range(4)
    ]
    assert b"property float opacity" in data and b"element vertex 500\n" in data


def test_f_rest_is_channel_major(tmp_path):
    splats = random_splats(n=2, degree=1)
    data = io.save(splats, tmp_path / "s.ply").read_bytes()
    table = np.frombuffer(_body(data), "<f4").reshape(2, -1)
    rest = table[:, 9:18]
    # INRIA: f_rest_0..2 are the red coefficients, 3..5 green, 6..8 blue.
    np.testing.assert_array_equal(rest[:, 0:3], splats.sh_rest[:, :, 0])
    np.testing.assert_array_equal(rest[:, 3:6], splats.sh_rest[:, :, 1])
    np.testing.assert_array_equal(rest[:, 6:9], splats.sh_rest[:, :, 2])


def test_opacity_zero_and_one_stay_finite(tmp_path):
    splats = random_splats(n=2)
    splats.opacities = np.array([0.0, 1.0], np.float32)
    data = io.save(splats, tmp_path / "s.ply").read_bytes()
    logits = np.frombuffer(_body(data), "<f4").reshape(2, -1)[:, 9]
    assert np.isfinite(logits).all() and logits[0] < -10 and logits[1] > 10
    np.testing.assert_allclose(io.load(tmp_path / "s.ply").opacities, [0, 1], atol=1e-5)


def _foreign_splat_ply() -> bytes:
    # Big-endian doubles, shuffled properties, an extra property and a second element.
    names = ["rot_1", "opacity", "extra", "z", "f_dc_2", "scale_2", "x", "rot_0", "f_dc_0",
             "scale_0", "y", "rot_3", "f_dc_1", "scale_1", "rot_2"]  # fmt: skip
    values = {
        "x": 1.0, "y": 2.0, "z": 3.0, "f_dc_0": 0.1, "f_dc_1": 0.2, "f_dc_2": 0.3,
        "opacity": 0.0, "scale_0": np.log(0.5), "scale_1": np.log(0.25), "scale_2": 0.0,
        "rot_0": 2.0, "rot_1": 0.0, "rot_2": 0.0, "rot_3": 0.0, "extra": 7.0,
    }  # fmt: skip
    header = ["ply", "format binary_big_endian 1.0", "comment made by hand", "element vertex 1"]
    header += [f"property double {name}" for name in names]
    header += ["element camera 1", "property float fov", "end_header", ""]
    body = np.array([values[name] for name in names], ">f8").tobytes()
    return "\n".join(header).encode() + body + np.array([1.0], ">f4").tobytes()


def test_reads_any_property_order_and_byte_order():
    splats = ply.read_ply(_foreign_splat_ply())
    np.testing.assert_allclose(splats.means, [[1, -2, -3]])  # RDF file -> world
    np.testing.assert_allclose(splats.scales, [[0.5, 0.25, 1.0]])
    np.testing.assert_allclose(splats.opacities, [0.5])
    np.testing.assert_allclose(splats.sh0, [[0.1, 0.2, 0.3]], rtol=1e-6)
    assert same_rotations(splats.rotations, np.array([[0.0, 1, 0, 0]]), 1e-6)  # (2,0,0,0) flipped


def test_mesh_round_trip(tmp_path):
    box = textured_box()
    back = io.load(io.save(box, tmp_path / "box.ply"))
    assert isinstance(back, MeshAsset)
    np.testing.assert_array_equal(back.positions, box.positions)
    np.testing.assert_array_equal(back.faces, box.faces)
    np.testing.assert_array_equal(back.normals, box.normals)
    np.testing.assert_allclose(back.uvs, box.uvs, atol=1e-7)
    np.testing.assert_allclose(back.colors, box.colors, atol=0.5 / 255 + 1e-7)
    assert back.metadata == box.metadata
    data = (tmp_path / "box.ply").read_bytes()
    assert b"property list uchar int vertex_indices" in data
    assert _header_names(data)[:8] == ["x", "y", "z", "nx", "ny", "nz", "s", "t"]
    # PLY tools put the UV origin bottom-left: t = 1 - v.
    t = np.frombuffer(_body(data)[: 8 * 36], np.dtype("<f4")).reshape(8, 9)[:, 7]
    np.testing.assert_allclose(t, 1 - box.uvs[:, 1], atol=1e-7)


def test_mesh_with_polygons_and_extra_face_properties():
    # A quad and a triangle, big-endian uint indices, and a flag after each index list.
    header = (
        b"ply\nformat binary_big_endian 1.0\nelement vertex 4\nproperty double y\n"
        b"property double x\nproperty double z\nproperty uchar red\nproperty uchar green\n"
        b"property uchar blue\nelement face 2\nproperty list uchar uint vertex_indices\n"
        b"property uchar flag\nend_header\n"
    )
    vertices = np.zeros(4, [("y", ">f8"), ("x", ">f8"), ("z", ">f8"), ("rgb", "u1", 3)])
    vertices["x"], vertices["y"], vertices["rgb"] = [0, 1, 1, 0], [0, 0, 1, 1], [255, 0, 51]
    faces = bytes([4]) + np.array([0, 1, 2, 3], ">u4").tobytes() + bytes([7])
    faces += bytes([3]) + np.array([0, 2, 3], ">u4").tobytes() + bytes([1])
    mesh = ply.read_ply(header + vertices.tobytes() + faces)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    np.testing.assert_allclose(mesh.positions[2], [1, 1, 0])
    np.testing.assert_allclose(mesh.colors[0], [1, 0, 0.2, 1])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n", "ASCII PLY"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex\nend_header\n", "malformed"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\n", "end_header"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\n"
         b"property float y\nproperty float z\nend_header\n" + bytes(24), "neither"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float f_dc_0\n"
         b"property float opacity\nend_header\n" + bytes(8), "lacks x, y, z"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty half x\nend_header\n",
         "unknown PLY type"),
    ],
)  # fmt: skip
def test_broken_files_raise_format_error(data, message):
    with pytest.raises(FormatError, match=message):
        ply.read_ply(data)


def test_truncated_files_raise_format_error(tmp_path):
    for asset in (random_splats(), textured_box()):
        data = ply.encode_splats(asset) if asset.kind == "splats" else ply.encode_mesh(asset)
        with pytest.raises(FormatError, match="truncated"):
            ply.read_ply(data[:-5])


def test_reads_a_262144_splat_file(tmp_path):
    splats = random_splats(n=262_144, degree=0, seed=2)
    back = ply.read_ply(io.save(splats, tmp_path / "big.ply"))
    assert back.n_splats == 262_144
    np.testing.assert_array_equal(back.means[-1], splats.means[-1])
