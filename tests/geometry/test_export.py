"""The export driver: clean -> decimate -> unwrap -> bake -> place, written as valid GLBs."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import ConfigError
from genesis3d.geometry.attributes import FieldAttributes, VertexAttributes
from genesis3d.geometry.export import ExportOptions, postprocess, postprocess_lods
from genesis3d.geometry.measure import mesh_health, uv_raster
from genesis3d.io import load, save
from genesis3d.testing.shapes import box_with_fin, torus
from tests.geometry.test_bake import smooth_field


def test_lods_are_healthy_textured_and_pass_the_validator(tmp_path, gltf_validator):
    positions, faces = torus(128, 64)
    options = ExportOptions(face_budgets=(3000, 800), texture_size=256, size=2.0, pivot="bottom")
    events = []
    meshes = postprocess_lods(
        positions, faces, FieldAttributes(smooth_field, 6), options, progress=events.append
    )
    assert [event.stage for event in events] == [
        "clean",
        "decimate",
        "uv",
        "bake",
        "uv",
        "bake",
        "done",
    ]
    assert len(meshes) == 2
    for mesh, budget in zip(meshes, options.face_budgets, strict=True):
        assert mesh.n_faces <= budget
        health = mesh_health(mesh.positions, mesh.faces, mesh.uvs)
        assert health.degenerate_faces == 0 and health.uv_out_of_range == 0
        assert uv_raster(mesh.uvs, mesh.faces, 256).max() == 1
        low, high = mesh.bounds()
        assert abs(float((high - low).max()) - 2.0) < 1e-4 and abs(float(low[1])) < 1e-5
        material = mesh.material
        assert material.base_color_texture.shape == (256, 256, 4)
        assert material.metallic_roughness_texture.shape == (256, 256, 3)
        assert material.normal_texture.shape == (256, 256, 3)
        assert mesh.metadata["bake"]["unfilled_fraction"] == 0.0
        assert set(mesh.metadata["stage_seconds"]) == {"clean", "decimate", "uv", "bake"}
        path = save(mesh, tmp_path / f"lod_{budget}.glb")
        gltf_validator(path)
        again = load(path)
        assert again.n_faces == mesh.n_faces


def test_thin_part_survives_with_rgb_only(tmp_path, gltf_validator):
    positions, faces = box_with_fin(48)
    mesh = postprocess(
        positions,
        faces,
        FieldAttributes(lambda p: smooth_field(p)[:, :3], 3),
        ExportOptions(face_budgets=(2000,), texture_size=256, normal_map=False),
    )
    assert mesh.material.base_color_texture.shape == (256, 256, 3)
    assert mesh.material.metallic_roughness_texture is None
    assert mesh.material.normal_texture is None
    assert mesh.positions[:, 2].max() > 0.6  # the fin is still there
    gltf_validator(save(mesh, tmp_path / "fin.glb"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texture_size": 3000}, "power of two between 256 and 8192, got 3000"),
        ({"face_budgets": ()}, "face_budgets"),
        ({"face_budgets": (2,)}, "face_budgets"),
        ({"pivot": "top"}, "pivot"),
        ({"size": -1.0}, "size"),
    ],
)
def test_options_are_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ExportOptions(**kwargs)


def test_postprocess_wants_one_budget():
    positions, faces = torus(16, 8)
    with pytest.raises(ConfigError, match="postprocess_lods"):
        postprocess(
            positions,
            faces,
            FieldAttributes(smooth_field, 6),
            ExportOptions(face_budgets=(100, 50), texture_size=256),
        )
    assert np.isfinite(positions).all()


def test_vertex_attributes_follow_the_clean_stage():
    # A triangle soup led by degenerate faces: the clean stage welds and renumbers every
    # vertex and drops faces, so face ids no longer match the source's faces.
    positions, faces = torus(96, 48)
    soup = positions[faces].reshape(-1, 3)
    soup_faces = np.arange(len(soup)).reshape(-1, 3)
    soup_faces = np.concatenate([soup_faces[:50, [0, 0, 1]], soup_faces])
    options = ExportOptions(face_budgets=(1500,), texture_size=256, normal_map=False)
    from_vertices = postprocess(
        soup, soup_faces, VertexAttributes(soup_faces, smooth_field(soup)), options
    )
    from_field = postprocess(positions, faces, FieldAttributes(smooth_field, 6), options)
    assert from_vertices.n_faces == from_field.n_faces
    sampled = from_vertices.material.base_color_texture.astype(float)
    expected = from_field.material.base_color_texture.astype(float)
    assert np.abs(sampled - expected).mean() < 2.0
