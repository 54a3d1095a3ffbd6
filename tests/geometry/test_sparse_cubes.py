"""The derived marching-cubes table and marching cubes over listed points."""

import importlib.util

import numpy as np
import pytest

from genesis3d.errors import ExtractionError
from genesis3d.geometry.cube_tables import CORNERS, EDGES, triangle_table
from genesis3d.geometry.isosurface import marching_cubes_indices
from genesis3d.geometry.sparse_cubes import marching_cubes_listed

NO_NUMBA = importlib.util.find_spec("numba") is None
BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(NO_NUMBA, reason="no numba"))]


def _all_points(grid):
    indices = np.argwhere(np.ones(grid.shape, bool))
    return indices, grid[tuple(indices.T)]


def _directed_edges(faces):
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _closed_and_consistent(faces) -> bool:
    """Every edge is used once in each direction: closed, manifold at edges, one orientation."""
    directed = _directed_edges(faces)
    forward = {tuple(edge) for edge in directed}
    return len(forward) == len(directed) and all((b, a) in forward for a, b in directed)


def _blobs(size, seed=0):
    """Four spheres joined (creases where they meet: ambiguous faces there)."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, size)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    centres = rng.uniform(-0.5, 0.5, (4, 3))
    return np.max(
        [0.3 - np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) for c in centres],
        axis=0,
    ).astype(np.float32)


def _ellipsoid(size, seed=0):
    """A smooth convex field: no ambiguous face."""
    radii = np.random.default_rng(seed).uniform(0.4, 0.8, 3)
    axis = np.linspace(-1, 1, size)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    return (1 - np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)).astype(
        np.float32
    )


def test_every_case_is_a_closed_surface_patch_wound_toward_the_above_corners():
    counts, table = triangle_table()
    assert counts[0] == counts[255] == 0
    for case in range(1, 255):
        above = np.array([case >> corner & 1 for corner in range(8)], bool)
        crossed = {e for e, (a, b) in enumerate(EDGES) if above[a] != above[b]}
        triangles = table[case, : 3 * counts[case]].reshape(-1, 3)
        # Exactly the crossed edges carry vertices, and no triangle repeats an edge.
        assert set(triangles.ravel()) == crossed
        assert all(len(set(triangle)) == 3 for triangle in triangles)
        # Each triangle's normal (vertices at edge midpoints) leans toward the above
        # corners of the edges it crosses.
        middle = CORNERS[EDGES].mean(axis=1)
        for triangle in triangles:
            a, b, c = middle[triangle]
            upward = sum(
                (CORNERS[EDGES[e, 1]] - CORNERS[EDGES[e, 0]]) * (1 if above[EDGES[e, 1]] else -1)
                for e in triangle
            )
            assert np.cross(b - a, c - a) @ upward > 0


@pytest.mark.parametrize("seed", range(4))
def test_noise_gives_a_closed_consistently_wound_surface(seed):
    """Random values make ambiguous faces everywhere; neighbouring cubes must still agree."""
    rng = np.random.default_rng(seed)
    grid = rng.uniform(-1, 1, (12, 12, 12)).astype(np.float32)
    grid[[0, -1]] = grid[:, [0, -1]] = grid[:, :, [0, -1]] = -1  # closed inside the box
    vertices, faces = marching_cubes_listed(*_all_points(grid), 12)
    assert len(faces) > 100
    assert _closed_and_consistent(faces)
    assert len(np.unique(faces)) == len(vertices)


@pytest.mark.parametrize("seed", range(3))
def test_a_smooth_field_gives_scikit_image_surface(seed):
    """Without ambiguous faces the crossings and the polygons are those of any marching cubes."""
    grid = _ellipsoid(40, seed)
    vertices, faces = marching_cubes_listed(*_all_points(grid), 40)
    theirs, their_faces = marching_cubes_indices(grid)
    assert len(faces) == len(their_faces) and len(vertices) == len(theirs)
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(theirs).query(vertices)
    assert distance.max() < 1e-5

    def area_vector(v, f):
        a, b, c = (v[f[:, k]].astype(np.float64) for k in range(3))
        return np.cross(b - a, c - a).sum(axis=0), np.linalg.norm(
            np.cross(b - a, c - a), axis=1
        ).sum()

    def volume(v, f):
        a, b, c = (v[f[:, k]].astype(np.float64) for k in range(3))
        return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6

    # The same winding (toward larger values) and nearly the same area (other diagonals).
    assert volume(vertices, faces) == pytest.approx(volume(theirs, their_faces), rel=1e-3)
    assert area_vector(vertices, faces)[1] == pytest.approx(
        area_vector(theirs, their_faces)[1], rel=2e-3
    )
    assert _closed_and_consistent(faces)


def test_only_cubes_with_every_corner_listed_are_triangulated():
    grid = _ellipsoid(24, 1)
    indices, values = _all_points(grid)
    whole = marching_cubes_listed(indices, values, 24)
    # Drop one point next to the surface: exactly the cubes around it lose their triangles.
    crossing = np.argwhere((grid[:-1] > 0) != (grid[1:] > 0))[0]
    keep = ~(indices == crossing).all(axis=1)
    vertices, faces = marching_cubes_listed(indices[keep], values[keep], 24)
    cells = np.ones(grid.shape, bool)  # scikit-image names a cube by its highest corner
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                cells[tuple(crossing + np.array((dx, dy, dz)))] = False
    _, expected = marching_cubes_indices(grid, cells=cells)
    assert len(faces) == len(expected) < len(whole[1])


@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_numpy_give_the_same_arrays(seed):
    pytest.importorskip("numba")
    rng = np.random.default_rng(seed)
    grid = _blobs(33, seed)
    grid[rng.uniform(size=grid.shape) < 0.05] = 0.0  # vertices on grid points
    noisy = grid + rng.normal(0, 0.02, grid.shape).astype(np.float32)  # ambiguous faces
    band = np.abs(noisy) < 0.15
    indices = np.argwhere(band)
    meshes = [
        marching_cubes_listed(indices, noisy[band], 33, backend=backend)
        for backend in ("numba", "numpy")
    ]
    assert len(meshes[0][1]) > 1000
    np.testing.assert_array_equal(meshes[0][0], meshes[1][0])
    np.testing.assert_array_equal(meshes[0][1], meshes[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_listed_order_does_not_matter_and_bad_lists_are_refused(backend):
    grid = _blobs(16, 2)
    indices, values = _all_points(grid)
    shuffled = np.random.default_rng(0).permutation(len(indices))
    expected = marching_cubes_listed(indices, values, 16, backend=backend)
    got = marching_cubes_listed(indices[shuffled], values[shuffled], 16, backend=backend)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    with pytest.raises(ExtractionError, match="listed twice"):
        marching_cubes_listed(indices[[0, 1, 1]], values[[0, 1, 1]], 16, backend=backend)
    with pytest.raises(ExtractionError, match=r"\[0, 15\]"):
        marching_cubes_listed(indices + 1, values, 16, backend=backend)
    empty = marching_cubes_listed(indices[:0], values[:0], 16, backend=backend)
    assert empty[0].shape == (0, 3) and empty[1].shape == (0, 3)
