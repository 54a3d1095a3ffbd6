"""Marching cubes over a sparse 2x refinement against the same on the dense fine grid."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genesis3d.errors import ExtractionError
from genesis3d.geometry.isosurface import marching_cubes_indices, marching_cubes_refined
from genesis3d.geometry.sparse_cubes import marching_cubes_listed


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


@pytest.mark.parametrize("points", [33, 30, 21])
def test_same_mesh_as_the_whole_fine_grid(points):
    """The band has a margin of a point around the surface: the cubes with an unlisted corner
    hold no surface, so skipping them changes nothing."""
    coarse, indices, values, dense, _ = _refined_case(points)
    vertices, faces = marching_cubes_refined(coarse, indices, values)
    whole = np.argwhere(np.ones(dense.shape, bool))
    expected = marching_cubes_listed(whole, dense[tuple(whole.T)], dense.shape[0])
    np.testing.assert_array_equal(vertices, expected[0])
    np.testing.assert_array_equal(faces, expected[1])
    # The crossings are scikit-image's on the dense grid.
    theirs, _ = marching_cubes_indices(dense)
    from scipy.spatial import cKDTree

    distance, match = cKDTree(theirs).query(vertices)
    assert distance.max() < 1e-5 and len(np.unique(match)) == len(vertices) == len(theirs)
    assert _edges_shared_twice(faces)


@pytest.mark.parametrize("seed", range(3))
def test_compiled_and_numpy_give_the_same_mesh(seed):
    pytest.importorskip("numba")
    coarse, indices, values, _, _ = _refined_case(30, seed)
    values[::7] = 0.0  # vertices on grid points
    meshes = [
        marching_cubes_refined(coarse, indices, values, backend=backend)
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
    with pytest.raises(ExtractionError, match="listed twice"):
        marching_cubes_refined(coarse, indices[[0, 0]], values[[0, 0]])
    # Points that hold the surface but never all eight corners of a cube.
    with pytest.raises(ExtractionError, match="no surface between"):
        marching_cubes_refined(coarse, indices[::2], values[::2])
