"""Gaussian splats in GLB with KHR_gaussian_splatting: layout, validator, round trips."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from genesis3d import io
from genesis3d.assets import SplatAsset
from genesis3d.errors import AssetError, FormatError
from genesis3d.io import glb
from genesis3d.io.glb_splats import SH_C0
from tests.support import random_splats, textured_box


def _document(data: bytes) -> dict:
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20 : 20 + length])


def _close(a: SplatAsset, b: SplatAsset, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(a.means, b.means, atol=atol)
    np.testing.assert_allclose(a.scales, b.scales, rtol=1e-5)
    # q and -q are the same rotation
    dots = np.abs(np.sum(a.rotations * b.rotations, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-5)
    np.testing.assert_allclose(a.opacities, b.opacities, atol=atol)
    np.testing.assert_allclose(a.sh0, b.sh0, atol=atol)


def test_layout_follows_the_extension():
    splats = random_splats(n=64)
    document = _document(glb.encode(splats))
    assert document["extensionsUsed"] == ["KHR_gaussian_splatting"]
    assert "extensionsRequired" not in document  # viewers without it show a point cloud
    (primitive,) = document["meshes"][0]["primitives"]
    assert primitive["mode"] == 0
    assert primitive["extensions"]["KHR_gaussian_splatting"] == {
        "kernel": "ellipse",
        "colorSpace": "srgb_rec709_display",
        "sortingMethod": "cameraDistance",
        "projection": "perspective",
    }
    attributes = primitive["attributes"]
    assert set(attributes) == {
        "POSITION",
        "COLOR_0",
        "KHR_gaussian_splatting:ROTATION",
        "KHR_gaussian_splatting:SCALE",
        "KHR_gaussian_splatting:OPACITY",
        "KHR_gaussian_splatting:SH_DEGREE_0_COEF_0",
    }
    accessors = document["accessors"]
    assert accessors[attributes["KHR_gaussian_splatting:ROTATION"]]["type"] == "VEC4"
    assert accessors[attributes["KHR_gaussian_splatting:OPACITY"]]["type"] == "SCALAR"
    position = accessors[attributes["POSITION"]]
    np.testing.assert_allclose(position["min"], splats.means.min(axis=0), rtol=1e-6)
    assert document["asset"]["extras"] == {"model": "test", "seed": 0}


def test_values_are_stored_as_the_extension_defines_them():
    splats = random_splats(n=16, seed=3)
    data = glb.encode(splats)
    document, binary = glb._chunks(data, "t")
    attributes = document["meshes"][0]["primitives"][0]["attributes"]

    def read(name):
        return glb._accessor(document, binary, attributes[name], "t")

    xyzw = read("KHR_gaussian_splatting:ROTATION")
    np.testing.assert_allclose(xyzw[:, 3], splats.rotations[:, 0], atol=1e-7)  # w last
    np.testing.assert_allclose(xyzw[:, :3], splats.rotations[:, 1:], atol=1e-7)
    log_scale = read("KHR_gaussian_splatting:SCALE")
    np.testing.assert_allclose(np.exp(log_scale), splats.scales, rtol=1e-6)
    opacity = read("KHR_gaussian_splatting:OPACITY")[:, 0]
    np.testing.assert_allclose(opacity, splats.opacities)
    colour = read("COLOR_0")
    np.testing.assert_allclose(colour[:, :3], np.clip(0.5 + SH_C0 * splats.sh0, 0, 1), atol=1e-6)
    np.testing.assert_allclose(colour[:, 3], splats.opacities)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_round_trip_and_validator(tmp_path, gltf_validator, degree):
    splats = random_splats(n=200, degree=degree, seed=degree)
    path = io.save(splats, tmp_path / "splats.glb")
    report = gltf_validator(path)
    assert report["issues"]["numErrors"] == 0
    back = io.load(path)
    assert isinstance(back, SplatAsset)
    _close(back, splats)
    if degree:
        np.testing.assert_allclose(back.sh_rest, splats.sh_rest, atol=1e-7)
        names = _document(path.read_bytes())["meshes"][0]["primitives"][0]["attributes"]
        assert f"KHR_gaussian_splatting:SH_DEGREE_{degree}_COEF_0" in names
    else:
        assert back.sh_rest is None
    assert back.metadata == splats.metadata


def _with_node(data: bytes, node: dict) -> bytes:
    document, binary = glb._chunks(data, "t")
    document["nodes"][0].update(node)
    return glb._container(document, binary)


def test_node_rotation_scale_and_translation_are_baked_in():
    splats = random_splats(n=32, seed=5)
    angle = np.pi / 3  # about Y
    node = {
        "rotation": [0.0, np.sin(angle / 2), 0.0, np.cos(angle / 2)],
        "scale": [2.0, 2.0, 2.0],
        "translation": [1.0, -2.0, 0.5],
    }
    back = glb.decode(_with_node(glb.encode(splats), node))
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    np.testing.assert_allclose(back.means, 2 * splats.means @ rotation.T + [1, -2, 0.5], atol=1e-5)
    np.testing.assert_allclose(back.scales, 2 * splats.scales, rtol=1e-5)

    def matrices(q):
        w, x, y, z = q.T
        return np.stack(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        ).transpose(2, 0, 1)

    np.testing.assert_allclose(
        matrices(back.rotations), rotation @ matrices(splats.rotations), atol=1e-5
    )


def test_uneven_scale_and_mirrors_are_refused_with_the_fix():
    data = glb.encode(random_splats(n=8))
    with pytest.raises(FormatError, match="unevenly"):
        glb.decode(_with_node(data, {"scale": [1.0, 2.0, 1.0]}))
    with pytest.raises(FormatError, match="mirrors"):
        glb.decode(_with_node(data, {"scale": [-1.0, 1.0, 1.0]}))


def test_partial_sh_degrees_are_refused():
    data = glb.encode(random_splats(n=8, degree=1))
    document, binary = glb._chunks(data, "t")
    del document["meshes"][0]["primitives"][0]["attributes"][
        "KHR_gaussian_splatting:SH_DEGREE_1_COEF_2"
    ]
    with pytest.raises(FormatError, match="partly defined"):
        glb.decode(glb._container(document, binary))


def test_missing_attribute_is_named():
    data = glb.encode(random_splats(n=8))
    document, binary = glb._chunks(data, "t")
    del document["meshes"][0]["primitives"][0]["attributes"]["KHR_gaussian_splatting:SCALE"]
    with pytest.raises(FormatError, match="lacks its KHR_gaussian_splatting:SCALE"):
        glb.decode(glb._container(document, binary))


def test_a_mesh_glb_is_still_a_mesh_and_empty_splats_are_refused(tmp_path):
    assert io.load(io.save(textured_box(), tmp_path / "box.glb")).kind == "mesh"
    empty = SplatAsset(
        np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 3))
    )
    with pytest.raises(AssetError, match="at least one Gaussian"):
        io.save(empty, tmp_path / "none.glb")
    assert not (tmp_path / "none.glb").exists()
