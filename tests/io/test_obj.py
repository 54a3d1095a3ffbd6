"""Wavefront OBJ: text geometry with its .mtl material and PNG textures beside it."""

from __future__ import annotations

import io as _io

import numpy as np
import pytest
from PIL import Image

from genesis3d import io
from genesis3d.assets import MeshAsset
from genesis3d.errors import ConfigError, FormatError
from genesis3d.io.obj import read_obj, write_obj
from tests.support import textured_box


def test_round_trip_keeps_geometry_uvs_normals_colours_and_metadata(tmp_path):
    box = textured_box()
    box.metadata = {"model": "triposg", "seed": 3}
    path = io.save(box, tmp_path / "box.obj")
    back = io.load(path)
    assert isinstance(back, MeshAsset) and back.metadata == box.metadata
    # Same triangles, corner by corner (vertices may be renumbered).
    np.testing.assert_allclose(back.positions[back.faces], box.positions[box.faces], atol=1e-6)
    np.testing.assert_allclose(back.uvs[back.faces], box.uvs[box.faces], atol=1e-6)
    np.testing.assert_allclose(back.normals[back.faces], box.normals[box.faces], atol=1e-6)
    np.testing.assert_allclose(
        back.colors[back.faces][..., :3], box.colors[box.faces][..., :3], atol=1e-6
    )


def test_material_and_textures_are_written_beside_it(tmp_path):
    box = textured_box()
    io.save(box, tmp_path / "box.obj")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "box.mtl", "box.obj", "box_basecolor.png", "box_metallic.png", "box_normal.png",
        "box_roughness.png",
    ]  # fmt: skip
    text = (tmp_path / "box.obj").read_text()
    assert "mtllib box.mtl" in text and f"usemtl {box.material.name}" in text
    mtl = (tmp_path / "box.mtl").read_text()
    for line in ("map_Kd box_basecolor.png", "map_Pm box_metallic.png", "norm box_normal.png"):
        assert line in mtl
    metallic = np.asarray(Image.open(tmp_path / "box_metallic.png"))
    roughness = np.asarray(Image.open(tmp_path / "box_roughness.png"))
    np.testing.assert_array_equal(metallic, box.material.metallic_roughness_texture[..., 2])
    np.testing.assert_array_equal(roughness, box.material.metallic_roughness_texture[..., 1])


def test_uvs_use_the_bottom_left_origin():
    box = textured_box()
    stream = _io.BytesIO()
    plain = MeshAsset(box.positions, box.faces, uvs=box.uvs)
    write_obj(plain, stream)
    rows = [line.split() for line in stream.getvalue().decode().splitlines()]
    vt = np.array([[float(a), float(b)] for tag, a, b in (r for r in rows if r[0] == "vt")])
    np.testing.assert_allclose(vt[:, 1], 1.0 - box.uvs[:, 1], atol=1e-6)


def test_an_untextured_mesh_goes_to_a_stream_a_textured_one_does_not():
    box = textured_box()
    stream = _io.BytesIO()
    write_obj(MeshAsset(box.positions, box.faces), stream)
    back = read_obj(stream.getvalue())
    assert back.n_faces == 12 and back.uvs is None and back.normals is None
    with pytest.raises(ConfigError, match="write a textured mesh to a path"):
        write_obj(box, _io.BytesIO())


def test_reader_takes_polygons_negative_indices_and_comments():
    text = b"""# a quad and a triangle
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
f 1 2 3 4
f -4 -3 -2
"""
    mesh = read_obj(text)
    assert mesh.n_faces == 3
    np.testing.assert_array_equal(mesh.positions[mesh.faces[0]], [[0, 0, 0], [1, 0, 0], [1, 1, 0]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"v 0 0 0\n", "no faces"),
        (b"v 0 0 0\nv 1 0 0\nf 1 2\n", "three corners"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "out of range"),
        (b"v 0 0 0\nv x 0 0\n", "malformed OBJ line 2"),
    ],
)
def test_reader_errors_name_the_line(text, message):
    with pytest.raises(FormatError, match=message):
        read_obj(text)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    box = textured_box()
    box.metadata = {"bad": object()}
    with pytest.raises(Exception, match="JSON"):
        io.save(box, tmp_path / "box.obj")
    assert list(tmp_path.iterdir()) == []
