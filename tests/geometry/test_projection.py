"""The surface projection of the bake: compiled and NumPy picks agree, backends are checked."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

from genesis3d.errors import ConfigError, MissingDependencyError
from genesis3d.geometry import compiled
from genesis3d.geometry.centroid_grid import CentroidGrid
from genesis3d.geometry.mesh_ops import unit_vectors, vertex_normals
from genesis3d.geometry.projection import project_to_surface
from genesis3d.testing.shapes import box_with_fin, torus


def _queries(positions: np.ndarray, faces: np.ndarray, count: int, seed: int):
    """Points off the surface, with normals that agree, disagree or sit on shared vertices."""
    rng = np.random.default_rng(seed)
    normals = vertex_normals(positions, faces).astype(np.float64)
    face = rng.integers(0, len(faces), count)
    weights = rng.dirichlet((1.0, 1.0, 1.0), count)
    points = np.einsum("kj,kjc->kc", weights, positions[faces[face]].astype(np.float64))
    point_normals = unit_vectors(np.einsum("kj,kjc->kc", weights, normals[faces[face]]))
    offset = rng.normal(0.0, 0.01, (count, 1))
    points = points + offset * point_normals
    # A quarter with a flipped normal (the far side of a thin part), a quarter exactly
    # above a vertex (ties between the faces around it).
    flipped = rng.random(count) < 0.25
    point_normals[flipped] *= -1.0
    vertex = rng.integers(0, len(positions), count // 4)
    points[: len(vertex)] = positions[vertex] + 1e-3 * normals[vertex]
    point_normals[: len(vertex)] = normals[vertex]
    flipped[: len(vertex)] = False
    return points, point_normals.astype(np.float64), flipped


@pytest.mark.parametrize("shape", ["torus", "fin"])
def test_numba_and_numpy_picks_agree(shape):
    pytest.importorskip("numba")
    if shape == "torus":
        positions, faces = torus(48, 24)
    else:
        positions, faces = box_with_fin(40, fin_voxels=1.5)
    points, normals, _ = _queries(positions, faces, 4000, seed=3)
    compiled = project_to_surface(points, normals, positions, faces, backend="numba")
    plain = project_to_surface(points, normals, positions, faces, backend="numpy")
    np.testing.assert_array_equal(compiled.face_ids, plain.face_ids)
    np.testing.assert_allclose(compiled.positions, plain.positions, atol=1e-6)
    np.testing.assert_allclose(compiled.barycentrics, plain.barycentrics, atol=1e-5)


def test_the_pick_prefers_facing_faces_and_the_lowest_tied_id():
    positions, faces = torus(32, 16)
    points, normals, flipped = _queries(positions, faces, 600, seed=4)
    for backend in ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else []):
        projected = project_to_surface(points, normals, positions, faces, backend=backend)
        face_normal = np.cross(
            positions[faces[:, 1]] - positions[faces[:, 0]],
            positions[faces[:, 2]] - positions[faces[:, 0]],
        )
        facing = (face_normal[projected.face_ids] * normals).sum(axis=1) > 0
        # Normals that agree with the surface always find a facing face among the nearest.
        assert facing[~flipped].all()
        # Queries above one vertex all take the same face.
        above = projected.face_ids[:150].reshape(-1)
        same_vertex = np.all(points[:150, None] == points[None, :150], axis=2)
        for row in range(150):
            assert len(set(above[same_vertex[row]].tolist())) == 1


def test_backend_choice_is_checked(monkeypatch, caplog):
    positions, faces = torus(16, 8)
    points, normals, _ = _queries(positions, faces, 10, seed=5)
    with pytest.raises(ConfigError, match="backend"):
        project_to_surface(points, normals, positions, faces, backend="cuda")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "numba" else real_find_spec(name, *args),
    )
    with pytest.raises(MissingDependencyError, match="pip install"):
        project_to_surface(points, normals, positions, faces, backend="numba")
    compiled.log_numpy_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="genesis3d.geometry.compiled"):
        fallback = project_to_surface(points, normals, positions, faces, backend="auto")
    assert "numba is not installed" in caplog.text
    plain = project_to_surface(points, normals, positions, faces, backend="numpy")
    np.testing.assert_array_equal(fallback.face_ids, plain.face_ids)


def test_grid_search_finds_the_k_d_trees_nearest_centroids():
    pytest.importorskip("numba")
    from scipy.spatial import cKDTree

    from genesis3d.geometry.mesh_ops import face_areas

    positions, faces = box_with_fin(40, fin_voxels=1.5)
    positions = positions.astype(np.float64)
    centres = positions[faces].mean(axis=1)
    grid = CentroidGrid(centres, face_areas(positions, faces))
    rng = np.random.default_rng(6)
    # Points on, near and far from the surface (outside the grid's box too).
    points = np.concatenate(
        [
            centres[rng.integers(0, len(centres), 3000)] + rng.normal(0, 0.02, (3000, 3)),
            rng.uniform(-3.0, 3.0, (500, 3)),
        ]
    )
    near = grid.query(points, 8)
    distance, _ = cKDTree(centres).query(points, k=8)
    found = np.sqrt(((centres[near] - points[:, None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(found, distance, rtol=1e-12, atol=1e-15)
    assert (np.diff(found, axis=1) >= 0).all()


def test_grid_search_hands_points_far_in_cells_to_the_tree():
    """Tiny faces make tiny cells: a point many cells from any centre must not scan them all."""
    pytest.importorskip("numba")
    from scipy.spatial import cKDTree

    from genesis3d.geometry.mesh_ops import face_areas

    side = np.linspace(0.0, 0.01, 101)
    x, y = np.meshgrid(side, side, indexing="ij")
    grid_points = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
    corner = np.arange(100)[:, None] * 101 + np.arange(100)[None, :]
    tiny = np.concatenate(
        [
            np.stack([corner, corner + 101, corner + 1], axis=-1).reshape(-1, 3),
            np.stack([corner + 1, corner + 101, corner + 102], axis=-1).reshape(-1, 3),
        ]
    )
    far = np.array([[5.0, 5.0, 5.0], [6.0, 5.0, 5.0], [5.0, 6.0, 5.0]])
    positions = np.concatenate([grid_points, far])
    faces = np.concatenate([tiny, [[len(grid_points), len(grid_points) + 1, len(grid_points) + 2]]])
    centres = positions[faces].mean(axis=1)
    grid = CentroidGrid(centres, face_areas(positions, faces))
    points = np.array([[5.2, 5.2, 5.1], [3.0, 3.0, 3.0], [0.005, 0.005, 0.001]])
    near = grid.query(points, 8)
    distance, _ = cKDTree(centres).query(points, k=8)
    found = np.sqrt(((centres[near] - points[:, None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(found, distance, rtol=1e-12, atol=1e-15)
