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


def _upsample2(blocks: np.ndarray) -> np.ndarray:
    """(k, n, n, n) -> (k, 2n - 1, 2n - 1, 2n - 1): linear interpolation with aligned corners.

    Even points copy the block; odd points average their two neighbours along each axis in
    turn, which is trilinear interpolation at the midpoints.
    """
    out = blocks
    for axis in (1, 2, 3):
        size = out.shape[axis]
        shape = list(out.shape)
        shape[axis] = 2 * size - 1
        grown = np.empty(shape, np.float32)
        even = [slice(None)] * 4
        odd = [slice(None)] * 4
        even[axis] = slice(0, None, 2)
        odd[axis] = slice(1, None, 2)
        grown[tuple(even)] = out
        low = out.take(np.arange(size - 1), axis=axis)
        high = out.take(np.arange(1, size), axis=axis)
        grown[tuple(odd)] = (low + high) * np.float32(0.5)
        out = grown
    return out


def marching_cubes_refined(
    coarse: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    level: float = 0.0,
    *,
    brick: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate a 2x refinement of a coarse grid known exactly only at some fine points.

    The fine grid has ``2n - 1`` points per axis for a coarse grid of ``n`` (fine point ``p``
    lies at coarse position ``p / 2``). Fine points listed in ``indices`` hold ``values``;
    every other one takes the trilinear interpolation of the coarse grid and must lie on the
    right side of ``level`` with all its neighbours (away from the surface), so only cubes
    with a listed corner are triangulated. The result equals :func:`marching_cubes_indices`
    on the whole fine grid restricted to those cubes, but the fine grid is never allocated:
    the cubes are gathered into bricks of ``brick``^3 cubes, triangulated in one call, and the
    vertices that bricks share on their faces are welded.

    Args:
        coarse: (n, n, n) float grid, every value finite.
        indices: (k, 3) int fine grid indices, each in [0, 2n - 2].
        values: (k,) float field values at those points.
        level: the iso-value.
        brick: cubes per brick side, even.

    Returns:
        (vertices (v, 3) float32 in fine grid-index units, faces (f, 3) int32), with the
        winding of :func:`marching_cubes_indices`.

    Raises:
        ExtractionError: non-finite values, or no crossing of ``level``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree
    from skimage.measure import marching_cubes

    coarse = np.asarray(coarse, np.float32)
    indices = np.asarray(indices, np.int64).reshape(-1, 3)
    values = np.asarray(values, np.float32).reshape(-1)
    if coarse.ndim != 3 or len(set(coarse.shape)) != 1 or coarse.shape[0] < 2:
        raise ExtractionError(
            f"the coarse grid must be a cube of at least 2^3 points, got {coarse.shape}"
        )
    if brick < 2 or brick % 2:
        raise ExtractionError(f"brick must be an even number of cubes, got {brick}")
    if len(indices) != len(values):
        raise ExtractionError(f"{len(indices)} indices but {len(values)} values")
    cells = 2 * (coarse.shape[0] - 1)
    if len(indices) and (indices.min() < 0 or indices.max() > cells):
        raise ExtractionError(f"fine indices must lie in [0, {cells}]")
    _check_finite("coarse grid", coarse)
    _check_finite("refined values", values)
    low = min(float(coarse.min()), float(values.min()) if len(values) else np.inf)
    high = max(float(coarse.max()), float(values.max()) if len(values) else -np.inf)
    # No refined point: the coarse level saw no surface to refine around.
    _check_crossing(low, high, level, nothing=not len(indices))

    # Where each listed point goes: its brick, and also the brick below on every axis where
    # it lies on the lower brick face (bricks share their face points). Linear ids, 1-D.
    per_axis = -(-cells // brick)
    side = brick + 1
    # Per axis, 1-D: a point's brick and place in it, and whether it lies on the lower face
    # of its brick (then the brick below holds it too, as its upper face).
    owner = [np.ascontiguousarray(indices[:, axis]) // brick for axis in range(3)]
    place = [indices[:, axis] - owner[axis] * brick for axis in range(3)]
    on_face = [(place[axis] == 0) & (indices[:, axis] > 0) for axis in range(3)]
    targets, locals_, sources = [], [], []
    for shift in ((x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)):
        rows = None
        for axis in range(3):
            if shift[axis]:
                rows = on_face[axis] if rows is None else rows & on_face[axis]
        if rows is None:  # every point, in its own brick
            box, local, source = owner, place, values
        else:
            picked = np.flatnonzero(rows)
            box = [owner[axis][picked] - shift[axis] for axis in range(3)]
            local = [place[axis][picked] + shift[axis] * brick for axis in range(3)]
            source = values[picked]
        # A point on the grid's far face has no brick of its own beyond the last one.
        fits = (box[0] < per_axis) & (box[1] < per_axis) & (box[2] < per_axis)
        if not fits.all():
            box = [part[fits] for part in box]
            local = [part[fits] for part in local]
            source = source[fits]
        targets.append((box[0] * per_axis + box[1]) * per_axis + box[2])
        locals_.append((local[0] * side + local[1]) * side + local[2])
        sources.append(source)
    target = np.concatenate(targets)
    active = np.zeros(per_axis**3, bool)
    active[target] = True
    brick_ids = np.flatnonzero(active)
    bricks = np.stack(np.unravel_index(brick_ids, (per_axis,) * 3), axis=1)
    slot_of = np.full(per_axis**3, -1, np.int64)
    slot_of[brick_ids] = np.arange(len(brick_ids))

    # Each brick's points: the coarse grid interpolated, then the listed values.
    half = brick // 2
    padded = np.pad(coarse, (0, half), mode="edge")
    span = np.arange(half + 1)
    base = bricks * half
    gathered = padded[
        (base[:, 0, None, None, None] + span[:, None, None]),
        (base[:, 1, None, None, None] + span[None, :, None]),
        (base[:, 2, None, None, None] + span[None, None, :]),
    ]
    grids = _upsample2(gathered)
    listed = np.zeros(grids.shape, bool)
    flat = slot_of[target] * side**3 + np.concatenate(locals_)
    grids.reshape(-1)[flat] = np.concatenate(sources)
    listed.reshape(-1)[flat] = True
    del target, flat, owner, place, on_face
    corner_any = np.zeros((len(bricks), brick, brick, brick), bool)
    for offset in np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T:
        corner_any |= listed[
            :,
            offset[0] : offset[0] + brick,
            offset[1] : offset[1] + brick,
            offset[2] : offset[2] + brick,
        ]
    # Cubes beyond the fine grid (the last bricks may overhang it) stay out.
    cube_index = bricks[:, :, None] * brick + np.arange(brick)[None, None, :]
    within = cube_index < cells
    corner_any &= within[:, 0, :, None, None] & within[:, 1, None, :, None]
    corner_any &= within[:, 2, None, None, :]

    # Lay the bricks out side by side in one volume; cubes between bricks stay masked.
    count = len(bricks)
    across = int(np.ceil(count ** (1 / 3)))
    layers = -(-count // (across * across))
    total = across * across * layers
    volume = np.full((total, side, side, side), np.float32(level + 1.0))
    volume[:count] = grids
    mask = np.zeros((total, side, side, side), bool)
    # scikit-image's mask names a cube by its highest corner.
    mask[:count, 1:, 1:, 1:] = corner_any
    del grids, listed, corner_any

    def tile(array: np.ndarray) -> np.ndarray:
        array = array.reshape(across, across, layers, side, side, side)
        return np.ascontiguousarray(array.transpose(0, 3, 1, 4, 2, 5)).reshape(
            across * side, across * side, layers * side
        )

    vertices, faces, _, _ = marching_cubes(tile(volume), level, method="lewiner", mask=tile(mask))
    if not len(faces):
        raise ExtractionError(
            "the field has no surface near its refined points; try another seed or picture"
        )
    # Back to fine grid units: which brick, then its origin.
    place = np.floor(vertices / side).astype(np.int64)
    local = vertices - place * side
    slot = (place[:, 0] * across + place[:, 1]) * layers + place[:, 2]
    world = local.astype(np.float64) + bricks[slot] * brick

    # Weld the copies of a vertex that neighbouring bricks made on their shared face: the
    # same grid edge and the same values, apart from float32 rounding in the tiled volume.
    on_face = ((local == 0) | (local == brick)).any(axis=1)
    candidates = np.flatnonzero(on_face)
    tree = cKDTree(world[candidates])
    # Two copies differ by the float32 rounding of their tiled positions, at most one unit in
    # the last place of the largest coordinate each; distinct vertices that close are the
    # ends of a degenerate sliver, and weld too.
    reach = 2.5 * float(np.spacing(np.float32(max(vertices.max(), 1.0))))
    pairs = tree.query_pairs(r=reach, output_type="ndarray")
    pairs = candidates[pairs]
    pairs = pairs[slot[pairs[:, 0]] != slot[pairs[:, 1]]]
    graph = coo_matrix(
        (np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(len(world),) * 2
    )
    _, label = connected_components(graph, directed=False)
    # Each vertex's representative: the first vertex of its group (groups of one mostly).
    _, first = np.unique(label, return_index=True)
    representative = first[label]
    keep = np.flatnonzero(representative == np.arange(len(world)))
    renumber = np.full(len(world), -1, np.int64)
    renumber[keep] = np.arange(len(keep))
    faces = renumber[representative][faces]
    faces = faces[
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    ]
    return world[keep].astype(np.float32), faces.astype(np.int32)
