"""Marching cubes over a sparse 2x refinement against the same on the dense fine grid."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genesis3d.errors import ExtractionError
from genesis3d.geometry.isosurface import marching_cubes_indices, marching_cubes_refined


def _refined_case(points: int, seed: int = 0):
    """A field of blobs on a coarse grid, refined exactly in a band around its surface."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, 2 * points - 1)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    centres = rng.uniform(-0.6, 0.6, (4, 3))
    fine = np.max(
        [0.35 - np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) for c in centres],
        axis=0,
    ).astype(np.float32)
    coarse = fine[::2, ::2, ::2].copy()
    # Points near the surface hold their exact value, the others the coarse interpolation.
    interpolated = F.interpolate(
        torch.from_numpy(coarse)[None, None], size=fine.shape, mode="trilinear", align_corners=True
    )[0, 0].numpy()
    band = np.abs(fine) < 3 * (axis[1] - axis[0])
    dense = np.where(band, fine, interpolated)
    indices = np.argwhere(band)
    return coarse, indices, fine[band], dense, band


def _edges_shared_twice(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool((counts == 2).all())


@pytest.mark.parametrize(("points", "brick"), [(33, 8), (30, 8), (21, 4)])
def test_same_surface_as_the_dense_fine_grid(points, brick):
    coarse, indices, values, dense, band = _refined_case(points)
    # Cubes with a refined corner, by their highest corner (scikit-image's mask).
    cells = np.zeros(dense.shape, bool)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                shifted = np.zeros_like(band)
                shifted[dx:, dy:, dz:] = band[
                    : band.shape[0] - dx, : band.shape[1] - dy, : band.shape[2] - dz
                ]
                cells |= shifted
    expected_vertices, expected_faces = marching_cubes_indices(dense, cells=cells)
    vertices, faces = marching_cubes_refined(coarse, indices, values, brick=brick)
    assert len(faces) == len(expected_faces) and len(vertices) == len(expected_vertices)
    # The same triangles: match vertices by position, then compare the face sets.
    from scipy.spatial import cKDTree

    distance, match = cKDTree(expected_vertices).query(vertices)
    assert distance.max() < 1e-4
    assert len(np.unique(match)) == len(vertices)
    ours = {tuple(np.roll(face, -np.argmin(face))) for face in match[faces]}
    theirs = {tuple(np.roll(face, -np.argmin(face))) for face in expected_faces}
    assert ours == theirs
    assert _edges_shared_twice(faces)


def test_bricks_do_not_leave_cracks_on_a_closed_surface():
    coarse, indices, values, _, _ = _refined_case(41, seed=3)
    vertices, faces = marching_cubes_refined(coarse, indices, values, brick=8)
    assert _edges_shared_twice(faces)
    assert len(np.unique(faces)) == len(vertices)


@pytest.mark.parametrize(("points", "brick", "seed"), [(33, 8, 0), (30, 8, 1), (21, 4, 2)])
def test_compiled_and_numpy_bricks_give_the_same_mesh(points, brick, seed):
    pytest.importorskip("numba")
    from genesis3d.geometry.brick_weld import weld_brick_vertices
    from genesis3d.geometry.bricks import assemble_bricks

    coarse, indices, values, _, _ = _refined_case(points, seed)
    # Exact zeros put vertices on grid points, the case the weld keys by point (and where
    # the surface is not a manifold even on the dense grid).
    values[::7] = 0.0
    volumes = [
        assemble_bricks(coarse, indices, values, 0.0, brick, backend=backend)
        for backend in ("numba", "numpy")
    ]
    np.testing.assert_array_equal(volumes[0].volume, volumes[1].volume)
    np.testing.assert_array_equal(volumes[0].mask, volumes[1].mask)
    np.testing.assert_array_equal(volumes[0].bricks, volumes[1].bricks)
    from skimage.measure import marching_cubes

    vertices, faces, _, _ = marching_cubes(
        volumes[0].volume, 0.0, method="lewiner", mask=volumes[0].mask
    )
    welded = [
        weld_brick_vertices(vertices, faces, volumes[0], 0.0, backend=backend)
        for backend in ("numba", "numpy")
    ]
    np.testing.assert_array_equal(welded[0][0], welded[1][0])
    np.testing.assert_array_equal(welded[0][1], welded[1][1])
    meshes = [
        marching_cubes_refined(coarse, indices, values, brick=brick, backend=backend)
        for backend in ("numba", "numpy")
    ]
    np.testing.assert_array_equal(meshes[0][0], meshes[1][0])
    np.testing.assert_array_equal(meshes[0][1], meshes[1][1])


def test_broken_inputs_raise_clear_errors():
    coarse, indices, values, _, _ = _refined_case(17)
    with pytest.raises(ExtractionError, match="non-finite"):
        marching_cubes_refined(coarse, indices, np.full_like(values, np.nan))
    with pytest.raises(ExtractionError, match="empty"):
        marching_cubes_refined(np.full_like(coarse, -1), indices, np.full_like(values, -1))
    with pytest.raises(ExtractionError, match=r"\[0, 32\]"):
        marching_cubes_refined(coarse, indices + 40, values)
    with pytest.raises(ExtractionError, match="even"):
        marching_cubes_refined(coarse, indices, values, brick=5)
