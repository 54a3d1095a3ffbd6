"""GLB: exact round trips through the Khronos validator, and files other tools write."""

from __future__ import annotations

import io as _io
import json
import logging
import struct

import numpy as np
import pytest

from genesis3d import io
from genesis3d.assets import MeshAsset, PBRMaterial
from genesis3d.errors import AssetError, FormatError
from genesis3d.io import glb
from tests.support import textured_box


def _chunks(data: bytes) -> tuple[dict, bytes]:
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    binary_length = struct.unpack_from("<I", data, 20 + json_length)[0]
    return document, data[28 + json_length : 28 + json_length + binary_length]


def _pack(document: dict, binary: bytes) -> bytes:
    # Independent of the writer: the GLB container as the glTF 2.0 spec lays it out.
    binary += b"\0" * (-len(binary) % 4)
    document = {**document, "buffers": [{"byteLength": len(binary)}]}
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    return (
        struct.pack("<4sII", b"glTF", 2, 28 + len(text) + len(binary))
        + struct.pack("<I4s", len(text), b"JSON")
        + text
        + struct.pack("<I4s", len(binary), b"BIN\0")
        + binary
    )


@pytest.mark.parametrize("alpha_mode", ["OPAQUE", "MASK", "BLEND"])
def test_round_trip_is_exact_and_valid(tmp_path, gltf_validator, alpha_mode):
    mesh = textured_box(alpha_mode)
    path = io.save(mesh, tmp_path / "box.glb")
    report = gltf_validator(path)
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    back = io.load(path)
    np.testing.assert_array_equal(back.positions, mesh.positions)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.normals, mesh.normals)
    np.testing.assert_array_equal(back.uvs, mesh.uvs)
    np.testing.assert_array_equal(back.colors, mesh.colors)
    for name in ("base_color_texture", "metallic_roughness_texture", "normal_texture"):
        np.testing.assert_array_equal(getattr(back.material, name), getattr(mesh.material, name))
    material = back.material
    assert material.alpha_mode == alpha_mode
    assert material.double_sided == (alpha_mode == "BLEND")
    assert material.metallic_factor == pytest.approx(0.2)
    assert material.roughness_factor == pytest.approx(0.7)
    assert material.base_color_factor == pytest.approx((1.0, 0.9, 0.8, 1.0))
    assert material.name == "box"
    if alpha_mode == "MASK":
        assert material.alpha_cutoff == pytest.approx(0.3)
    assert back.metadata == {"model": "test", "seed": 1}


def test_document_layout(tmp_path):
    data = glb.encode(textured_box("MASK"))
    assert data[:4] == b"glTF" and struct.unpack_from("<I", data, 8)[0] == len(data)
    document, binary = _chunks(data)
    assert struct.unpack_from("<I", data, 12)[0] % 4 == 0 and len(binary) % 4 == 0
    assert all(view["byteOffset"] % 4 == 0 for view in document["bufferViews"])
    assert document["asset"]["generator"].startswith("genesis3d")
    primitive = document["meshes"][0]["primitives"][0]
    assert set(primitive["attributes"]) == {
        "POSITION",
        "NORMAL",
        "TEXCOORD_0",
        "TANGENT",
        "COLOR_0",
    }
    position = document["accessors"][primitive["attributes"]["POSITION"]]
    assert position["min"] == [0, 0, 0] and position["max"] == [1, 1, 1]
    assert document["accessors"][primitive["indices"]]["componentType"] == 5123  # uint16
    material = document["materials"][0]
    assert material["alphaMode"] == "MASK" and material["alphaCutoff"] == pytest.approx(0.3)
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= set(material["pbrMetallicRoughness"])
    assert document["images"][0]["mimeType"] == "image/png"
    assert document["samplers"] == [
        {"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}
    ]


def test_untextured_mesh_without_normals_gets_area_weighted_normals(tmp_path, gltf_validator):
    # A square in the z = 0 plane plus one tiny sliver tilted up: area weighting keeps +Z.
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    mesh = MeshAsset(positions=positions, faces=[[0, 1, 2], [0, 2, 3]])
    path = io.save(mesh, tmp_path / "square.glb")
    report = gltf_validator(path)
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    document, _ = _chunks(path.read_bytes())
    assert "samplers" not in document and "textures" not in document  # nothing unused
    back = io.load(path)
    np.testing.assert_allclose(back.normals, np.tile([0, 0, 1.0], (4, 1)))
    assert back.material.base_color_texture is None and back.colors is None


def test_rgb_texture_stays_rgb_and_big_meshes_use_uint32_indices(tmp_path, gltf_validator):
    side = 260  # 67,600 vertices: more than uint16 indices can address
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    positions = np.stack([u.ravel(), v.ravel(), np.zeros(side * side)], axis=1)
    grid = np.arange(side * side).reshape(side, side)
    a, b, c, d = grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]
    faces = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)]).reshape(-1, 3)
    texture = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    mesh = MeshAsset(
        positions=positions,
        faces=faces,
        uvs=positions[:, :2],
        material=PBRMaterial(base_color_texture=texture),
    )
    path = io.save(mesh, tmp_path / "grid.glb")
    gltf_validator(path)
    document, _ = _chunks(path.read_bytes())
    assert (
        document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]["componentType"]
        == 5125
    )
    back = io.load(path)
    assert back.material.base_color_texture.shape == (4, 4, 3)
    np.testing.assert_array_equal(back.material.base_color_texture, texture)
    np.testing.assert_array_equal(back.faces, mesh.faces)


def test_writes_to_a_stream_the_same_bytes(tmp_path):
    mesh = textured_box()
    stream = _io.BytesIO()
    glb.write_glb(mesh, stream)
    assert stream.getvalue() == io.save(mesh, tmp_path / "a.glb").read_bytes()
    assert glb.read_glb(stream.getvalue()).n_faces == 12


def test_refuses_meshes_it_cannot_write():
    with pytest.raises(AssetError, match="at least one face"):
        glb.encode(MeshAsset(positions=np.zeros((3, 3)), faces=np.zeros((0, 3), int)))
    with pytest.raises(AssetError, match="JSON-serialisable"):
        glb.encode(MeshAsset(positions=np.eye(3), faces=[[0, 1, 2]], metadata={"bad": object()}))
    with pytest.raises(AssetError, match="JSON-serialisable"):
        glb.encode(MeshAsset(positions=np.eye(3), faces=[[0, 1, 2]], metadata={"x": float("nan")}))


def _foreign_glb() -> bytes:
    """A GLB as other tools write it: interleaved vertices, uint8 indices, normalised UVs,
    nested nodes with TRS and matrix transforms, two materials and a POINTS primitive."""
    # Interleaved: position (3 x f32) + normal (3 x f32) + uv (2 x u16 normalised) = 28 bytes.
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    normals = np.tile(np.array([0, 0, 1], np.float32), (3, 1))
    uvs = np.array([[0, 0], [65535, 0], [0, 65535]], np.uint16)
    vertex = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("uv", "<u2", 2)])
    table = np.empty(3, vertex)
    table["p"], table["n"], table["uv"] = positions, normals, uvs
    indices = np.array([0, 1, 2], np.uint8).tobytes() + b"\0"  # padded to 4
    binary = table.tobytes() + indices
    document = {
        "asset": {"version": "2.0", "generator": "hand-made"},
        "scene": 0,
        "scenes": [{"nodes": [0, 3]}],
        "nodes": [
            {"translation": [10, 0, 0], "children": [1, 2]},
            {"mesh": 0},
            {"mesh": 1, "rotation": [0, 0, 0.7071067811865476, 0.7071067811865476]},
            {"mesh": 0, "matrix": [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 5, 1]},
        ],
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 0},
                    {"attributes": {"POSITION": 0}, "mode": 0},
                ]
            },
            {
                "primitives": [
                    {"attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 1}
                ]
            },
        ],
        "materials": [
            {"pbrMetallicRoughness": {"baseColorFactor": [1, 0, 0, 1]}, "name": "red"},
            {"pbrMetallicRoughness": {"baseColorFactor": [0, 0, 1, 1]}, "name": "blue"},
        ],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 0, "byteOffset": 24, "componentType": 5123, "normalized": True, "count": 3, "type": "VEC2"},
            {"bufferView": 1, "componentType": 5121, "count": 3, "type": "SCALAR"},
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 84, "byteStride": 28, "target": 34962},
            {"buffer": 0, "byteOffset": 84, "byteLength": 3, "target": 34963},
        ],
    }  # fmt: skip
    return _pack(document, binary)


def test_reads_what_other_tools_write(tmp_path, gltf_validator, caplog):
    path = tmp_path / "foreign.glb"
    path.write_bytes(_foreign_glb())
    gltf_validator(path)  # the hand-made file itself is valid glTF
    with caplog.at_level(logging.WARNING, logger="genesis3d.io.glb"):
        mesh = io.load(path)
    assert "POINTS" in caplog.text and "2 different materials" in caplog.text
    assert mesh.n_faces == 3 and mesh.n_vertices == 9
    # node 1: translated by 10; node 2: translated and turned 90 degrees about Z; node 3: scaled
    # by 2 and moved by 5 along Z.
    np.testing.assert_allclose(mesh.positions[:3], [[10, 0, 0], [11, 0, 0], [10, 1, 0]], atol=1e-6)
    np.testing.assert_allclose(mesh.positions[3:6], [[10, 0, 0], [10, 1, 0], [9, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(mesh.positions[6:], [[0, 0, 5], [2, 0, 5], [0, 2, 5]], atol=1e-6)
    np.testing.assert_allclose(mesh.normals, np.tile([0, 0, 1.0], (9, 1)), atol=1e-6)
    np.testing.assert_allclose(mesh.uvs[:3], [[0, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert mesh.material.name == "red"


def test_mirroring_transform_keeps_faces_outward():
    document, binary = _chunks(_foreign_glb())
    document["scenes"] = [{"nodes": [4]}]
    document["nodes"].append({"mesh": 1, "scale": [-1, 1, 1]})
    mesh = glb.decode(_pack(document, binary))
    np.testing.assert_array_equal(mesh.faces, [[2, 1, 0]])
    np.testing.assert_allclose(mesh.normals, np.tile([0, 0, 1.0], (3, 1)), atol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["meshes"][0]["primitives"][0].update(mode=5), "TRIANGLE_STRIP"),
        (lambda d: d["meshes"].__setitem__(0, {"primitives": [{"attributes": {"POSITION": 0}, "mode": 0}]})
         or d.update(scenes=[{"nodes": [1]}]), "only 1 POINTS"),
        (lambda d: d["accessors"][0].update(sparse={"count": 1}), "sparse"),
        (lambda d: d.update(extensionsRequired=["KHR_draco_mesh_compression"]), "KHR_draco"),
        (lambda d: d["bufferViews"][0].update(byteLength=4000), "truncated"),
        (lambda d: d["meshes"][0]["primitives"][0].update(indices=99), "not a valid glTF"),
    ],
)  # fmt: skip
def test_refuses_what_it_cannot_read(change, message):
    document, binary = _chunks(_foreign_glb())
    change(document)
    with pytest.raises(FormatError, match=message):
        glb.decode(_pack(document, binary))


def test_broken_containers():
    data = glb.encode(textured_box())
    with pytest.raises(FormatError, match="truncated"):
        glb.decode(data[: len(data) // 2])
    with pytest.raises(FormatError, match="not a GLB"):
        glb.decode(b"PK\x03\x04" + data[4:])
    with pytest.raises(FormatError, match="version 1"):
        glb.decode(data[:4] + struct.pack("<I", 1) + data[8:])
