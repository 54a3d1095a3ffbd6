"""Iso-surfaces of scalar fields sampled on regular grids, on the CPU.

Marching cubes is scikit-image's Lewiner variant. Vertex positions come back in grid-index
units and are mapped to the world with :func:`index_to_world`: a grid of ``n`` points per
axis spans ``n - 1`` cells, so index ``n - 1`` lands on the upper bound. (The official
TripoSG extraction divides by ``n`` or by ``2^depth`` instead, which shrinks its meshes
toward the lower corner; :func:`index_to_world` reproduces that only when given the
divisor explicitly.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genesis3d.errors import ExtractionError


def marching_cubes_indices(
    values: np.ndarray, level: float = 0.0, *, cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the ``level`` set of a grid; the inside is where values exceed ``level``.

    Args:
        values: (nx, ny, nz) float grid, every value finite, each axis at least 2 points.
        level: the iso-value.
        cells: optional (nx, ny, nz) bool: triangulate only the cubes whose lowest corner is
            True (scikit-image's ``mask``). A surface crossing a skipped cube is lost, so it
            must cover every cube the surface passes through; it saves the scan of the rest.

    Returns:
        (vertices (v, 3) float32 in grid-index units, faces (f, 3) int32) in scikit-image's
        order, whose right-hand normals point toward larger values: reverse the faces
        (``faces[:, ::-1]``) for outward normals of a field that is larger inside.

    Raises:
        ExtractionError: a non-finite value, or no crossing of ``level`` (an empty or
            completely full field), with what the values were.
    """
    from skimage.measure import marching_cubes

    grid = np.asarray(values)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise ExtractionError(
            f"marching cubes needs a 3-D grid with at least 2 points per axis, got shape {grid.shape}"
        )
    finite = np.isfinite(grid)
    if not finite.all():
        raise ExtractionError(
            f"the field has {int((~finite).sum())} non-finite values of {grid.size}; "
            "the model produced NaN or infinity (try float32: --dtype float32)"
        )
    low, high = float(grid.min()), float(grid.max())
    if not low < level < high:
        state = (
            "empty (every value is outside)" if high <= level else "full (every value is inside)"
        )
        raise ExtractionError(
            f"the field has no surface at level {level}: it is {state}, values in "
            f"[{low:.4g}, {high:.4g}]; try another seed or picture"
        )
    if cells is not None and cells.shape != grid.shape:
        raise ExtractionError(f"cells has shape {cells.shape}, the grid {grid.shape}")
    vertices, faces, _, _ = marching_cubes(
        grid.astype(np.float32, copy=False), level, method="lewiner", mask=cells
    )
    return vertices.astype(np.float32), faces.astype(np.int32)


def index_to_world(
    vertices: np.ndarray,
    points_per_axis: Sequence[int],
    bounds_min: Sequence[float],
    bounds_max: Sequence[float],
    *,
    divisor: float | None = None,
) -> np.ndarray:
    """Map grid-index positions to the world box the grid samples.

    Args:
        vertices: (v, 3) float positions in grid-index units.
        points_per_axis: grid points per axis (n); index n - 1 is ``bounds_max``.
        bounds_min, bounds_max: (3,) the box corners.
        divisor: divide the indices by this instead of n - 1 (only to reproduce another
            implementation's scaling; it shrinks the mesh toward ``bounds_min``).

    Returns:
        (v, 3) float32 world positions.
    """
    low = np.asarray(bounds_min, np.float32)
    size = np.asarray(bounds_max, np.float32) - low
    if divisor is None:
        cells = np.asarray(points_per_axis, np.float32) - 1
        return (np.asarray(vertices, np.float32) / cells * size + low).astype(np.float32)
    return (np.asarray(vertices, np.float32) / np.float32(divisor) * size + low).astype(np.float32)
