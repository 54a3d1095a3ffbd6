"""The bake's compiled kernels against their NumPy twins: same texels, same samples."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.geometry import attributes
from genesis3d.geometry.attributes import FieldAttributes, SparseVoxelAttributes
from genesis3d.geometry.bake import bake_textures, rasterize_atlas
from genesis3d.geometry.decimate import decimate
from genesis3d.geometry.uv import unwrap_uv
from genesis3d.testing.shapes import torus

pytest.importorskip("numba")

SIZE = 256


def _field(points: np.ndarray) -> np.ndarray:
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return np.stack(
        [0.5 + 0.3 * np.sin(3 * x), 0.5 + 0.3 * np.cos(2 * y), 0.5 + 0.4 * z, x * x, 0.3 + y * y],
        axis=1,
    ).astype(np.float32)


@pytest.fixture(scope="module")
def unwrapped_torus():
    dense_positions, dense_faces = torus(120, 60)
    positions, faces = decimate(dense_positions, dense_faces, 1500)
    unwrap = unwrap_uv(positions, faces, SIZE)
    return positions[unwrap.source_vertex], unwrap, dense_positions, dense_faces


def _assert_rasters_equal(uvs: np.ndarray, faces: np.ndarray, size: int):
    compiled = rasterize_atlas(uvs, faces, size, backend="numba")
    plain = rasterize_atlas(uvs, faces, size, backend="numpy")
    assert compiled.covered.any()
    np.testing.assert_array_equal(compiled.face_ids, plain.face_ids)
    np.testing.assert_array_equal(compiled.barycentrics, plain.barycentrics)
    np.testing.assert_array_equal(compiled.covered, plain.covered)
    return compiled


def test_rasterisers_agree_on_an_atlas(unwrapped_torus):
    _, unwrap, _, _ = unwrapped_torus
    _assert_rasters_equal(unwrap.uvs, unwrap.faces, SIZE)


def test_rasterisers_agree_on_shared_edges_and_overlaps():
    """Edges through texel centres and overlapping triangles of different sizes."""
    size = 32
    # Corners on texel centres: (i + 0.5) / size.
    grid = (np.arange(9) * 3 + 0.5) / size
    u, v = np.meshgrid(grid, grid, indexing="xy")
    uvs = np.stack([u.ravel(), v.ravel()], axis=1)
    cell = (np.arange(8)[:, None] * 9 + np.arange(8)[None, :]).ravel()
    faces = np.concatenate(
        [np.stack([cell, cell + 1, cell + 10], 1), np.stack([cell, cell + 10, cell + 9], 1)]
    )
    # A large triangle (the lowest id) under many small ones, and a degenerate one: the
    # larger box is drawn last whatever the ids.
    big = len(uvs)
    uvs = np.concatenate([uvs, [[0.1, 0.1], [0.9, 0.2], [0.4, 0.95], [0.5, 0.5]]])
    faces = np.concatenate([[[big, big + 1, big + 2]], faces, [[big + 3, big + 3, big + 3]]])
    raster = _assert_rasters_equal(uvs, faces, size)
    assert (raster.face_ids == 0).sum() > 100
    _assert_rasters_equal(uvs[:, ::-1].copy(), faces[:, ::-1].copy(), size)


def test_compiled_and_numpy_bakes_give_the_same_textures(unwrapped_torus):
    points, unwrap, dense_positions, dense_faces = unwrapped_torus
    baked = {
        backend: bake_textures(
            points,
            unwrap.faces,
            unwrap.uvs,
            dense_positions,
            dense_faces,
            FieldAttributes(_field, 5),
            SIZE,
            backend=backend,
        )
        for backend in ("numba", "numpy")
    }
    compiled, plain = baked["numba"], baked["numpy"]
    np.testing.assert_array_equal(compiled.base_color, plain.base_color)
    np.testing.assert_array_equal(compiled.metallic_roughness, plain.metallic_roughness)
    # The normal map repeats the NumPy arithmetic operation by operation; allow one level
    # on a rare texel should a platform's einsum sum in another order.
    difference = np.abs(compiled.normal.astype(int) - plain.normal)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    assert (compiled.normal != 128).any()


def _shell(resolution: int, seed: int):
    axis = (np.arange(resolution) + 0.5) / resolution - 0.5
    xx, yy, zz = np.meshgrid(axis, axis, axis, indexing="ij")
    shell = np.abs(np.sqrt(xx**2 + yy**2 + zz**2) - 0.3) < 0.05
    coords = np.argwhere(shell)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (len(coords), 4)).astype(np.float32)
    directions = rng.normal(size=(20_000, 3))
    points = 0.3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    points += rng.normal(scale=0.04, size=points.shape)
    # Points outside the grid and far from every voxel too.
    points = np.concatenate([points, rng.uniform(-0.7, 0.7, (2000, 3))])
    return coords, values, points


@pytest.mark.parametrize("missing", ["zero", "nearest"])
@pytest.mark.parametrize("column_table", [True, False])
def test_compiled_and_numpy_voxel_samplers_agree(monkeypatch, missing, column_table):
    if not column_table:
        monkeypatch.setattr(attributes, "_COLUMN_TABLE_LIMIT", 0)
    coords, values, points = _shell(40, seed=3)
    compiled = SparseVoxelAttributes(coords, values, 40, missing=missing, backend="numba")
    plain = SparseVoxelAttributes(coords, values, 40, missing=missing, backend="numpy")
    got = compiled.sample_positions(points)
    expected = plain.sample_positions(points)
    assert (expected == 0).all(axis=1).any() == (missing == "zero")
    np.testing.assert_array_equal(got, expected)
    if not column_table:
        assert len(compiled._column_starts) == 0
