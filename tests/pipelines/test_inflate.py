"""The ``inflate`` pipeline end to end: pictures in, clean textured meshes and splats out."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d import io
from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.measure import mesh_health, splat_stats
from genesis3d.geometry.sampling import sample_texture
from genesis3d.pipelines.inflate import METHOD, InflatePipeline

SMALL = {"resolution": 96, "texture_size": 256, "splats": 4096}
# Quadrant colours of the test disc, as the viewer sees them.
TOP_LEFT, TOP_RIGHT = (220, 40, 40), (40, 200, 40)
BOTTOM_LEFT, BOTTOM_RIGHT = (40, 40, 220), (230, 220, 30)


def quadrant_disc(size: int = 256) -> np.ndarray:
    """(size, size, 4) uint8: an anti-aliased disc painted in four quadrant colours."""
    sub = 4
    step = (np.arange(size * sub) + 0.5) / sub
    x, y = np.meshgrid(step, step)
    inside = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (0.4 * size) ** 2).astype(np.float32)
    alpha = inside.reshape(size, sub, size, sub).mean(axis=(1, 3))
    rgba = np.zeros((size, size, 4), np.uint8)
    half = size // 2
    rgba[:half, :half, :3] = TOP_LEFT
    rgba[:half, half:, :3] = TOP_RIGHT
    rgba[half:, :half, :3] = BOTTOM_LEFT
    rgba[half:, half:, :3] = BOTTOM_RIGHT
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return rgba


@pytest.fixture(scope="module")
def disc_result():
    return InflatePipeline()(quadrant_disc(), seed=5, outputs=("mesh", "splats"), **SMALL)


def test_the_disc_becomes_a_clean_textured_solid_of_one_metre(disc_result):
    mesh = disc_result.mesh
    health = mesh_health(mesh.positions, mesh.faces, mesh.uvs)
    assert health.watertight and health.edge_manifold and health.vertex_manifold
    assert health.consistently_oriented and health.volume > 0
    assert health.degenerate_faces == 0 and health.genus == 0 and health.components == 1
    assert health.uv_out_of_range == 0 and health.uv_overlap < 0.05
    assert (mesh.uvs >= 0).all() and (mesh.uvs <= 1).all()
    low, high = mesh.bounds()
    assert (high - low).max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose((low + high) / 2, 0.0, atol=1e-6)
    assert high[2] - low[2] < 0.8  # thinner than it is wide: front plus a gentler back
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    material = mesh.material
    assert material.base_color_texture.shape == (256, 256, 4)
    assert material.metallic_factor == 0.0 and 0.8 <= material.roughness_factor <= 0.9
    assert material.alpha_mode == "OPAQUE" and not material.double_sided
    assert disc_result.condition.shape[2] == 4 and disc_result.condition.dtype == np.uint8
    assert set(disc_result.timings) == {"preprocess", "geometry", "texture", "splats"}


def test_the_front_shows_the_picture_and_the_back_a_darker_mirror(disc_result):
    mesh = disc_result.mesh
    colours = sample_texture(mesh.material.base_color_texture, mesh.uvs)[:, :3] * 255
    x, y, normal_z = mesh.positions[:, 0], mesh.positions[:, 1], mesh.normals[:, 2]
    quadrants = {
        (-1, 1): TOP_LEFT,  # world +Y is up and -X the viewer's left
        (1, 1): TOP_RIGHT,
        (-1, -1): BOTTOM_LEFT,
        (1, -1): BOTTOM_RIGHT,
    }
    for (sx, sy), colour in quadrants.items():
        inner = (sx * x > 0.08) & (sy * y > 0.08) & (np.hypot(x, y) < 0.3)
        front = np.median(colours[inner & (normal_z > 0.5)], axis=0)
        back = np.median(colours[inner & (normal_z < -0.5)], axis=0)
        np.testing.assert_allclose(front, colour, atol=4)
        # The back is the same side of the object seen from behind, darkened.
        np.testing.assert_allclose(back, np.array(colour) * 0.6, atol=4)


def test_splats_cover_the_surface_with_the_picture_colours(disc_result):
    splats = disc_result.splats
    stats = splat_stats(splats)
    assert stats["count"] == 4096 and stats["sh_degree"] == 0
    assert 0.95 <= stats["opacity_min"] <= stats["opacity_max"] <= 1.0
    low, high = disc_result.mesh.bounds()
    assert (splats.means >= low - 1e-6).all() and (splats.means <= high + 1e-6).all()
    front_top_left = (splats.means[:, 0] < -0.08) & (splats.means[:, 1] > 0.08)
    front_top_left &= splats.means[:, 2] > 0.1
    colours = np.median(splats.colors()[front_top_left], axis=0) * 255
    np.testing.assert_allclose(colours, TOP_LEFT, atol=6)
    for asset in (disc_result.mesh, splats):
        assert asset.metadata["model"] == "inflate" and asset.metadata["method"] == METHOD
        assert asset.metadata["seed"] == 5 and asset.metadata["resolution"] == 96
        assert "not a learned" in asset.metadata["method"]


def test_the_seed_drives_the_splats_only():
    pipeline = InflatePipeline()
    picture = quadrant_disc(128)
    first = pipeline(picture, seed=1, outputs=("mesh", "splats"), **SMALL)
    again = pipeline(picture, seed=1, outputs=("mesh", "splats"), **SMALL)
    other = pipeline(picture, seed=2, outputs=("mesh", "splats"), **SMALL)
    np.testing.assert_array_equal(first.splats.means, again.splats.means)
    np.testing.assert_array_equal(first.splats.sh0, again.splats.sh0)
    assert not np.array_equal(first.splats.means, other.splats.means)
    np.testing.assert_array_equal(first.mesh.positions, other.mesh.positions)
    np.testing.assert_array_equal(first.mesh.uvs, other.mesh.uvs)


def test_outputs_progress_and_device():
    events = []
    pipeline = InflatePipeline(device="cuda", dtype="float16")  # runs on the CPU regardless
    result = pipeline(quadrant_disc(128), progress=events.append, **SMALL)
    assert result.mesh is not None and result.splats is None  # the mesh is the primary output
    stages = [event.stage for event in events]
    assert stages[0] == "preprocess" and "geometry" in stages and "texture" in stages
    assert "splats" not in stages
    assert all(event.step <= event.total for event in events)
    splats_only = pipeline(quadrant_disc(128), outputs=("splats",), **SMALL)
    assert splats_only.mesh is None and splats_only.splats.n_splats == 4096


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"resolution": 8}, "resolution must be an integer between 32 and 512, got 8"),
        ({"resolution": 100.5}, "resolution must be an integer"),
        ({"thickness": 0.0}, "thickness must be a number between 0.05 and 2"),
        ({"back_scale": 1.5}, "back_scale must be a number between 0.05 and 1"),
        ({"texture_size": 3000}, "texture_size must be a power of two between 256 and 8192"),
        ({"splats": 10}, "splats must be an integer between 1024"),
        ({"smoothness": 1}, "inflate has no parameter smoothness"),
    ],
)
def test_bad_parameters_are_refused_with_the_range(params, message):
    with pytest.raises(ConfigError, match=message):
        InflatePipeline()(quadrant_disc(64), **params)


def test_bad_outputs_and_empty_pictures_are_refused():
    with pytest.raises(ConfigError, match="not 'voxels'"):
        InflatePipeline()(quadrant_disc(64), outputs=("voxels",))
    with pytest.raises(InputError):
        InflatePipeline()(np.zeros((64, 64, 4), np.uint8), **SMALL)


def test_every_test_picture_gives_a_valid_watertight_mesh(testdata_images):
    # the RGBA pictures use their matte; the RGB photos go through `auto` background removal
    pictures = sorted(p for p in testdata_images.iterdir() if p.suffix in (".webp", ".png", ".jpg"))
    assert len(pictures) >= 15, f"expected the 15 test pictures in {testdata_images}"
    pipeline = InflatePipeline()
    for path in pictures:
        result = pipeline(path, outputs=("mesh", "splats"), splats=16_384)
        mesh = result.mesh
        health = mesh_health(mesh.positions, mesh.faces, mesh.uvs)
        assert health.watertight and health.vertex_manifold, path.name
        assert health.consistently_oriented and health.volume > 0, path.name
        assert health.degenerate_faces == 0 and health.duplicate_faces == 0, path.name
        assert health.uv_out_of_range == 0, path.name
        assert 1_000 < health.faces <= 150_000, path.name
        assert (mesh.bounds()[1] - mesh.bounds()[0]).max() == pytest.approx(1.0, abs=1e-5)
        assert result.splats.n_splats == 16_384


def test_an_inflated_glb_passes_the_khronos_validator(tmp_path, testdata_images, gltf_validator):
    result = InflatePipeline()(testdata_images / "T.png", resolution=96, texture_size=512)
    path = io.save(result.mesh, tmp_path / "T.glb")
    report = gltf_validator(path)
    assert report["issues"]["numErrors"] == 0
    loaded = io.load(path)
    health = mesh_health(loaded.positions, loaded.faces, loaded.uvs)
    assert health.watertight and health.faces == result.mesh.n_faces
