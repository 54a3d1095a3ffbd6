"""Attribute sources: sparse voxel trilinear sampling (official semantics), per-vertex, field."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from genesis3d.errors import InputError
from genesis3d.geometry.attributes import (
    AttributeSource,
    FieldAttributes,
    SparseVoxelAttributes,
    SurfacePoints,
    VertexAttributes,
)

BOUNDS = np.array([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])


def reference_sample(coords, values, resolution, bounds, point):
    """One point, the flex_gemm grid_sample_3d formula written out with a dict."""
    table = {tuple(c): v for c, v in zip(coords.tolist(), values, strict=True)}
    grid = (np.asarray(point, np.float64) - bounds[0]) / ((bounds[1] - bounds[0]) / resolution)
    base = np.floor(grid - 0.5).astype(int)
    total, acc = 0.0, np.zeros(values.shape[1])
    for offset in itertools.product((0, 1), repeat=3):
        corner = base + offset
        weight = np.prod(1.0 - np.abs(grid - corner - 0.5))
        if tuple(corner) in table:
            total += weight
            acc += weight * table[tuple(corner)]
    return acc / max(total, 1e-12), total


def linear_field(points):
    return np.stack([points @ [1.0, 2.0, -3.0] + 0.25, points @ [-0.5, 0.0, 1.5]], axis=1)


def voxel_centres(coords, resolution, bounds=BOUNDS):
    return (coords + 0.5) * (bounds[1] - bounds[0]) / resolution + bounds[0]


def test_dense_grid_reproduces_a_linear_field_exactly():
    resolution = 16
    coords = np.argwhere(np.ones((resolution,) * 3, bool))
    source = SparseVoxelAttributes(
        coords, linear_field(voxel_centres(coords, resolution)), resolution, BOUNDS
    )
    rng = np.random.default_rng(0)
    # Inside the hull of the voxel centres trilinear interpolation of a linear field is exact.
    half = 0.5 - 0.5 / resolution
    points = rng.uniform(-half, half, (5000, 3))
    np.testing.assert_allclose(
        source.sample(SurfacePoints(points)), linear_field(points), atol=1e-5
    )
    assert isinstance(source, AttributeSource)


def test_sparse_shell_matches_the_slow_reference_and_renormalises():
    resolution = 24
    axis = (np.arange(resolution) + 0.5) / resolution - 0.5
    xx, yy, zz = np.meshgrid(axis, axis, axis, indexing="ij")
    shell = np.abs(np.sqrt(xx**2 + yy**2 + zz**2) - 0.3) < 0.06
    coords = np.argwhere(shell)
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, (len(coords), 3))
    source = SparseVoxelAttributes(coords, values, resolution, BOUNDS)
    directions = rng.normal(size=(400, 3))
    points = 0.3 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    points += rng.normal(scale=0.02, size=points.shape)
    got = source.sample_positions(points)
    for point, row in zip(points, got, strict=True):
        expected, total = reference_sample(coords, values, resolution, BOUNDS, point)
        np.testing.assert_allclose(row, expected, atol=1e-5)
    # A constant field stays constant next to missing voxels: the weights are renormalised.
    constant = SparseVoxelAttributes(coords, np.full((len(coords), 1), 0.7), resolution, BOUNDS)
    np.testing.assert_allclose(constant.sample_positions(points), 0.7, atol=1e-6)


def test_border_of_the_grid_renormalises_over_voxels_inside():
    resolution = 8
    coords = np.argwhere(np.ones((resolution,) * 3, bool))
    source = SparseVoxelAttributes(
        coords, linear_field(voxel_centres(coords, resolution)), resolution, BOUNDS
    )
    # Beyond the last centre along x only the last layer (and the layer before) remain.
    corner = np.array([[0.499, 0.0, 0.0]])
    expected, _ = reference_sample(coords, source.values, resolution, BOUNDS, corner[0])
    np.testing.assert_allclose(source.sample_positions(corner)[0], expected, atol=1e-6)
    last = voxel_centres(np.array([[resolution - 1, 3, 3]]), resolution)
    np.testing.assert_allclose(
        source.sample_positions(last), linear_field(last).astype(np.float32), atol=1e-6
    )


def test_points_with_no_voxel_nearby_get_zero_or_the_nearest_voxel():
    coords = np.array([[2, 2, 2], [5, 5, 5]])
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    far = np.array([[0.45, -0.45, 0.45], [-0.49, -0.49, -0.49]])
    zero = SparseVoxelAttributes(coords, values, 8, BOUNDS)
    np.testing.assert_array_equal(zero.sample_positions(far), 0.0)
    nearest = SparseVoxelAttributes(coords, values, 8, BOUNDS, missing="nearest")
    np.testing.assert_array_equal(nearest.sample_positions(far), [[3.0, 4.0], [1.0, 2.0]])
    # Points with a neighbour are unaffected by the choice.
    inside = voxel_centres(coords, 8)
    np.testing.assert_array_equal(nearest.sample_positions(inside), values)


def test_voxel_source_rejects_bad_input():
    with pytest.raises(InputError, match="unique"):
        SparseVoxelAttributes(np.zeros((2, 3), int), np.zeros((2, 1)), 4)
    with pytest.raises(InputError, match=r"\[0, 4\)"):
        SparseVoxelAttributes(np.array([[4, 0, 0]]), np.zeros((1, 1)), 4)


def test_vertex_attributes_interpolate_with_barycentrics():
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    values = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [3.0, 5.0]])
    source = VertexAttributes(faces, values)
    points = SurfacePoints(
        np.zeros((2, 3)), np.array([0, 1]), np.array([[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    )
    expected = [[0.3 + 1.0, 0.2 + 0.3], [5 / 3, 2.0]]
    np.testing.assert_allclose(source.sample(points), expected, atol=1e-6)
    with pytest.raises(InputError, match="barycentrics"):
        source.sample(SurfacePoints(np.zeros((2, 3))))


def test_field_attributes_call_the_function_and_check_its_shape():
    source = FieldAttributes(linear_field, channels=2)
    points = np.random.default_rng(2).uniform(-1, 1, (10, 3))
    np.testing.assert_allclose(
        source.sample(SurfacePoints(points)), linear_field(points), atol=1e-5
    )
    with pytest.raises(InputError, match="must return shape"):
        FieldAttributes(linear_field, channels=3).sample(SurfacePoints(points))
