"""Mesh comparison figures on analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import ConfigError
from genesis3d.geometry.compare import closest_point_on_triangles, compare_meshes, sample_surface
from genesis3d.testing.shapes import uv_sphere


def test_identical_meshes_score_perfectly_up_to_sampling():
    positions, faces = uv_sphere(32, 64)
    result = compare_meshes(positions, faces, positions, faces, samples=20_000)
    assert result.f_score == 1.0 and result.normal_consistency > 0.99
    assert result.chamfer < 0.005 * result.diagonal


def test_a_scaled_sphere_gives_the_expected_distances():
    positions, faces = uv_sphere(48, 96)
    bigger = positions * 1.05
    result = compare_meshes(bigger, faces, positions, faces, samples=20_000, threshold=0.01)
    # Every point is about 0.05 from the other (faceted) sphere.
    assert abs(result.chamfer - 0.05) < 0.002 and 0.05 <= result.hausdorff < 0.055
    assert result.f_score == 0.0  # 0.05 > 1 % of the diagonal (0.035)
    loose = compare_meshes(bigger, faces, positions, faces, samples=20_000, threshold=0.03)
    assert loose.f_score == 1.0
    # Reversed winding does not change normal consistency.
    flipped = compare_meshes(positions, faces[:, ::-1], positions, faces, samples=5_000)
    assert flipped.normal_consistency > 0.99


def test_samples_are_on_the_surface_and_seeded():
    positions, faces = uv_sphere(16, 32)
    rng = np.random.default_rng(0)
    points, normals = sample_surface(positions, faces, 1000, rng)
    assert np.all(np.linalg.norm(points, axis=1) <= 1.0 + 1e-6)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-9)
    a = compare_meshes(positions, faces, positions * 1.01, faces, samples=1000, seed=3)
    b = compare_meshes(positions, faces, positions * 1.01, faces, samples=1000, seed=3)
    assert a == b


def test_bad_threshold_is_refused():
    positions, faces = uv_sphere(8, 16)
    with pytest.raises(ConfigError, match="threshold"):
        compare_meshes(positions, faces, positions, faces, threshold=5.0)


def test_closest_point_on_triangles_matches_a_dense_search():
    rng = np.random.default_rng(4)
    corners = rng.normal(size=(200, 3, 3))
    points = rng.normal(scale=2.0, size=(200, 3))
    closest = closest_point_on_triangles(points, corners)
    weights = rng.random((20_000, 2))
    weights[weights.sum(axis=1) > 1] = 1 - weights[weights.sum(axis=1) > 1]
    weights = np.concatenate([weights, [[0, 0], [1, 0], [0, 1]]])
    for point, triangle, found in zip(points, corners, closest, strict=True):
        dense = triangle[0] + weights @ (triangle[1:] - triangle[0])
        brute = np.linalg.norm(dense - point, axis=1).min()
        got = np.linalg.norm(found - point)
        assert got <= brute + 1e-9 and got >= brute - 0.05
