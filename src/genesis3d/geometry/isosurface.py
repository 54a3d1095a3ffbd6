"""Iso-surfaces of scalar fields sampled on regular grids, on the CPU.

Marching cubes of a whole grid is scikit-image's Lewiner variant; a grid known only at a list
of points (the flash extraction's final level) is triangulated by
:mod:`~genesis3d.geometry.sparse_cubes`. Vertex positions come back in grid-index
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
from genesis3d.geometry.compiled import Backend
from genesis3d.geometry.sparse_cubes import marching_cubes_listed


def _check_finite(name: str, values: np.ndarray) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        raise ExtractionError(
            f"the {name} has {int((~finite).sum())} non-finite values of {values.size}; "
            "the model produced NaN or infinity (try float32: --dtype float32)"
        )


def _check_crossing(low: float, high: float, level: float, *, nothing: bool = False) -> None:
    """Refuse a field whose values in [low, high] never cross ``level`` (or ``nothing`` to mesh)."""
    if nothing or not low < level < high:
        state = (
            "empty (every value is outside)" if high <= level else "full (every value is inside)"
        )
        raise ExtractionError(
            f"the field has no surface at level {level}: it is {state}, values in "
            f"[{low:.4g}, {high:.4g}]; try another seed or picture"
        )


def marching_cubes_indices(
    values: np.ndarray, level: float = 0.0, *, cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the ``level`` set of a grid; the inside is where values exceed ``level``.

    Args:
        values: (nx, ny, nz) float grid, every value finite, each axis at least 2 points.
        level: the iso-value.
        cells: optional (nx, ny, nz) bool: triangulate only the cubes whose highest corner
            is True (scikit-image's ``mask``; the cube from i - 1 to i on each axis). A surface crossing a skipped cube is lost, so it
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
    _check_finite("field", grid)
    _check_crossing(float(grid.min()), float(grid.max()), level)
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


def marching_cubes_refined(
    coarse: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    level: float = 0.0,
    *,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate a 2x refinement of a coarse grid known only at some fine points.

    The fine grid has ``2n - 1`` points per axis for a coarse grid of ``n`` (fine point ``p``
    lies at coarse position ``p / 2``). Fine points listed in ``indices`` hold ``values``;
    the cubes whose eight corners are all listed are triangulated and the others skipped, as
    the official flash extraction's dual marching cubes skips cubes with an unevaluated
    (NaN) corner. The fine grid is never allocated (see
    :func:`~genesis3d.geometry.sparse_cubes.marching_cubes_listed`). Where the listed
    points cover the surface with a margin of a point, as the flash ladder's do, this is
    marching cubes on the whole fine grid with the skipped points filled from the coarse one.

    Args:
        coarse: (n, n, n) float grid, every value finite: its range tells an empty or full
            field apart.
        indices: (k, 3) int fine grid indices, each in [0, 2n - 2], distinct; fastest in
            row-major order (sorted otherwise).
        values: (k,) float field values at them.
        level: the iso-value.
        backend: "numba" (compiled, needs numba), "numpy", or "auto" (numba when
            installed); the same mesh either way.

    Returns:
        (vertices (v, 3) float32 in fine grid-index units, faces (f, 3) int32), with the
        winding of :func:`marching_cubes_indices`.

    Raises:
        ExtractionError: non-finite values, indices and values of different lengths, an
            index outside the fine grid, a point listed twice, or no crossing of ``level``.
    """
    coarse = np.asarray(coarse, np.float32)
    indices = np.asarray(indices, np.int64).reshape(-1, 3)
    values = np.asarray(values, np.float32).reshape(-1)
    if coarse.ndim != 3 or len(set(coarse.shape)) != 1 or coarse.shape[0] < 2:
        raise ExtractionError(
            f"the coarse grid must be a cube of at least 2^3 points, got {coarse.shape}"
        )
    if len(indices) != len(values):
        raise ExtractionError(f"{len(indices)} indices but {len(values)} values")
    size = 2 * coarse.shape[0] - 1
    _check_finite("coarse grid", coarse)
    _check_finite("refined values", values)
    low = min(float(coarse.min()), float(values.min()) if len(values) else np.inf)
    high = max(float(coarse.max()), float(values.max()) if len(values) else -np.inf)
    # No refined point: the coarse level saw no surface to refine around.
    _check_crossing(low, high, level, nothing=not len(indices))
    # The indices' range and repeats are checked there, in its one pass over the list.
    vertices, faces = marching_cubes_listed(indices, values, size, level, backend=backend)
    if not len(faces):
        raise ExtractionError(
            "the field has no surface between its refined points; try another seed or picture"
        )
    return vertices, faces
