"""Bricks of a 2x-refined grid, laid side by side for one marching-cubes call.

:func:`~genesis3d.geometry.isosurface.marching_cubes_refined` triangulates the cubes of a fine
grid (``2n - 1`` points per axis over a coarse grid of ``n``) that have a listed fine point as
a corner, without allocating the fine grid: the fine grid is cut into bricks of ``brick``^3
cubes, the bricks holding such cubes are filled (coarse grid interpolated, listed values over
it) and tiled into one volume, and a mask names the cubes to triangulate. Neighbouring bricks
share their face points, so a vertex on a shared face comes out once per brick;
:func:`~genesis3d.geometry.brick_weld.weld_brick_vertices` merges the copies by the grid edge
they lie on.

With numba installed (the ``export`` extra) the volume is filled by compiled loops, one brick
at a time from the points grouped by brick; without it by NumPy gathers and slices. Both
write the same values (the same float32 operations in the same order) and the same mask
(``tests/geometry/test_isosurface.py`` compares them).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genesis3d.geometry.compiled import Backend, use_numba

logger = logging.getLogger(__name__)


#: the eight corner offsets of a cube
_CORNERS = np.array([(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.int64)


@dataclass
class BrickVolume:
    """Bricks tiled into one volume for scikit-image's marching cubes.

    Attributes:
        volume: (across * side, across * side, layers * side) float32, side = brick + 1:
            brick ``s`` (slot) at tile ``(s // (across * layers), s // layers % across,
            s % layers)``; unused slots hold ``level + 1``.
        mask: the volume's shape, bool: the cubes to triangulate, named by their highest
            corner (scikit-image's mask).
        bricks: (count, 3) int64 brick coordinates of the slots in use (fine origin
            ``bricks * brick``).
        brick: cubes per brick side.
        across, layers: tiles along the first two axes and along the third.
    """

    volume: np.ndarray
    mask: np.ndarray
    bricks: np.ndarray
    brick: int
    across: int
    layers: int


def _copies(indices: np.ndarray, brick: int, per_axis: int):
    """Each listed point's place in every brick that holds it: (brick ids, local ids, rows).

    A point on the lower face of its brick along an axis (and not on the grid's lower face)
    is also the upper face point of the brick below; a point on the grid's far face has no
    brick of its own beyond the last one. Linear ids: brick ``(bx * per_axis + by) *
    per_axis + bz``, local ``(i * side + j) * side + k``.
    """
    side = brick + 1
    owner = [np.ascontiguousarray(indices[:, axis]) // brick for axis in range(3)]
    place = [indices[:, axis] - owner[axis] * brick for axis in range(3)]
    on_face = [(place[axis] == 0) & (indices[:, axis] > 0) for axis in range(3)]
    targets, locals_, rows_ = [], [], []
    for shift in _CORNERS:
        rows = None
        for axis in range(3):
            if shift[axis]:
                rows = on_face[axis] if rows is None else rows & on_face[axis]
        if rows is None:  # every point, in its own brick
            box, local, picked = owner, place, np.arange(len(indices))
        else:
            picked = np.flatnonzero(rows)
            box = [owner[axis][picked] - shift[axis] for axis in range(3)]
            local = [place[axis][picked] + shift[axis] * brick for axis in range(3)]
        fits = (box[0] < per_axis) & (box[1] < per_axis) & (box[2] < per_axis)
        if not fits.all():
            box = [part[fits] for part in box]
            local = [part[fits] for part in local]
            picked = picked[fits]
        targets.append((box[0] * per_axis + box[1]) * per_axis + box[2])
        locals_.append((local[0] * side + local[1]) * side + local[2])
        rows_.append(picked)
    return np.concatenate(targets), np.concatenate(locals_), np.concatenate(rows_)


def _layout(count: int) -> tuple[int, int]:
    across = int(np.ceil(count ** (1 / 3)))
    while across**3 < count:  # the float cube root may fall short
        across += 1
    return across, -(-count // (across * across))


def _upsample2(blocks: np.ndarray) -> np.ndarray:
    """(k, n, n, n) -> (k, 2n - 1, 2n - 1, 2n - 1): linear interpolation with aligned corners.

    Even points copy the block; odd points average their two neighbours, ``(low + high) *
    0.5`` in float32, along x, then y, then z: trilinear interpolation at the midpoints.
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


def _tile(array: np.ndarray, across: int, layers: int) -> np.ndarray:
    side = array.shape[-1]
    array = array.reshape(across, across, layers, side, side, side)
    return np.ascontiguousarray(array.transpose(0, 3, 1, 4, 2, 5)).reshape(
        across * side, across * side, layers * side
    )


def _assemble_numpy(
    coarse: np.ndarray, indices: np.ndarray, values: np.ndarray, level: float, brick: int
) -> BrickVolume:
    cells = 2 * (coarse.shape[0] - 1)
    per_axis = -(-cells // brick)
    side = brick + 1
    target, local, rows = _copies(indices, brick, per_axis)
    active = np.zeros(per_axis**3, bool)
    active[target] = True
    brick_ids = np.flatnonzero(active)
    bricks = np.stack(np.unravel_index(brick_ids, (per_axis,) * 3), axis=1).astype(np.int64)
    slot_of = np.full(per_axis**3, -1, np.int64)
    slot_of[brick_ids] = np.arange(len(brick_ids))

    # Each brick's points: the coarse grid interpolated (edge-padded past the far face for
    # bricks that overhang the grid), then the listed values.
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
    flat = slot_of[target] * side**3 + local
    grids.reshape(-1)[flat] = values[rows]
    listed.reshape(-1)[flat] = True
    del target, local, rows, flat
    # A cube is triangulated when a corner is listed, it lies in the grid (the last bricks
    # may overhang it) and its corners are not all on one side of the level (those cubes
    # have no triangle: skipping them changes nothing but the time).
    corner_any = np.zeros((len(bricks), brick, brick, brick), bool)
    above_all = np.ones((len(bricks), brick, brick, brick), bool)
    above_any = np.zeros((len(bricks), brick, brick, brick), bool)
    above = grids > np.float64(level)
    for x, y, z in _CORNERS:
        window = (slice(None), slice(x, x + brick), slice(y, y + brick), slice(z, z + brick))
        corner_any |= listed[window]
        above_all &= above[window]
        above_any |= above[window]
    del listed, above
    corner_any &= above_any & ~above_all
    cube_index = bricks[:, :, None] * brick + np.arange(brick)[None, None, :]
    within = cube_index < cells
    corner_any &= within[:, 0, :, None, None] & within[:, 1, None, :, None]
    corner_any &= within[:, 2, None, None, :]

    across, layers = _layout(len(bricks))
    total = across * across * layers
    volume = np.full((total, side, side, side), np.float32(level + 1.0))
    volume[: len(bricks)] = grids
    mask = np.zeros((total, side, side, side), bool)
    mask[: len(bricks), 1:, 1:, 1:] = corner_any
    del grids, corner_any
    return BrickVolume(
        _tile(volume, across, layers), _tile(mask, across, layers), bricks, brick, across, layers
    )


@functools.cache
def _numba_kernels() -> tuple[Callable[..., None], ...]:
    """The compiled twins of :func:`_assemble_numpy`'s stages (built on first use)."""
    import numba

    @numba.njit(cache=True)
    def mark(indices, home, shared, per_axis, active):
        """Flag every brick that holds a listed point: its home brick, and the brick below
        along each axis where it lies on the home brick's lower face."""
        for row in range(indices.shape[0]):
            x, y, z = indices[row, 0], indices[row, 1], indices[row, 2]
            for tx in range(home[x] - shared[x], home[x] + 1):
                for ty in range(home[y] - shared[y], home[y] + 1):
                    for tz in range(home[z] - shared[z], home[z] + 1):
                        active[(tx * per_axis + ty) * per_axis + tz] = True

    @numba.njit(cache=True)
    def group(indices, values, home, place, shared, per_axis, slot_of, start, out):
        """The points grouped by home brick slot and, within it, by the lower faces of the
        brick they lie on and share with a neighbour (bits x 4, y 2, z 1): ``out`` gets each
        point's place in its brick (``i << 16 | j << 8 | k``) and value, group ``g`` of slot
        ``s`` spanning ``start[8 s + g]:start[8 s + g + 1]``."""
        codes, sorted_values = out
        count = indices.shape[0]
        keys = np.empty(count, np.int64)
        for row in range(count):
            x, y, z = indices[row, 0], indices[row, 1], indices[row, 2]
            slot = slot_of[(home[x] * per_axis + home[y]) * per_axis + home[z]]
            key = slot * 8 + (shared[x] << 2 | shared[y] << 1 | shared[z])
            keys[row] = key
            start[key + 1] += 1
        for key in range(1, len(start)):
            start[key] += start[key - 1]
        following = start[:-1].copy()
        for row in range(count):
            x, y, z = indices[row, 0], indices[row, 1], indices[row, 2]
            position = following[keys[row]]
            following[keys[row]] += 1
            codes[position] = (place[x] << 16) | (place[y] << 8) | place[z]
            sorted_values[position] = values[row]

    @numba.njit(cache=True)
    def build(coarse, codes, values, bricks, slot_of, start, tiles, level, out):
        """Fill each slot: the coarse grid interpolated as in :func:`_upsample2`, then the
        listed values of its own points and its upper neighbours' lower-face points; flag
        the cubes with a listed corner, inside the grid, whose corners straddle the level."""
        volume, mask, brick, cells, pad = out
        side = brick + 1
        half = brick // 2
        last = coarse.shape[0] - 1
        per_axis = -(-cells // brick)
        halfway = np.float32(0.5)
        for slot in range(len(tiles)):
            ox, oy, oz = tiles[slot, 0], tiles[slot, 1], tiles[slot, 2]
            if slot >= len(bricks):
                volume[ox : ox + side, oy : oy + side, oz : oz + side] = pad
                continue
            bx, by, bz = bricks[slot, 0], bricks[slot, 1], bricks[slot, 2]
            block = np.empty((half + 1, half + 1, half + 1), np.float32)
            for i in range(half + 1):
                for j in range(half + 1):
                    for k in range(half + 1):
                        block[i, j, k] = coarse[
                            min(bx * half + i, last),
                            min(by * half + j, last),
                            min(bz * half + k, last),
                        ]
            # Along x, then y, then z, as _upsample2 does.
            along_x = np.empty((side, half + 1, half + 1), np.float32)
            for i in range(side):
                q = i // 2
                for j in range(half + 1):
                    for k in range(half + 1):
                        if i % 2:
                            along_x[i, j, k] = (block[q, j, k] + block[q + 1, j, k]) * halfway
                        else:
                            along_x[i, j, k] = block[q, j, k]
            along_y = np.empty((side, side, half + 1), np.float32)
            for i in range(side):
                for j in range(side):
                    q = j // 2
                    for k in range(half + 1):
                        if j % 2:
                            along_y[i, j, k] = (along_x[i, q, k] + along_x[i, q + 1, k]) * halfway
                        else:
                            along_y[i, j, k] = along_x[i, q, k]
            for i in range(side):
                for j in range(side):
                    for k in range(side):
                        q = k // 2
                        if k % 2:
                            value = (along_y[i, j, q] + along_y[i, j, q + 1]) * halfway
                        else:
                            value = along_y[i, j, q]
                        volume[ox + i, oy + j, oz + k] = value
            # Listed points: bit k of listed[i, j] is point (i, j, k).
            listed = np.zeros((side, side), np.int64)
            for sx in range(2):
                for sy in range(2):
                    for sz in range(2):
                        nx, ny, nz = bx + sx, by + sy, bz + sz
                        if nx >= per_axis or ny >= per_axis or nz >= per_axis:
                            continue
                        other = slot_of[(nx * per_axis + ny) * per_axis + nz]
                        if other < 0:
                            continue
                        # A neighbour's points on its lower faces toward us are ours too.
                        toward = sx << 2 | sy << 1 | sz
                        for faces in range(8):
                            if faces & toward != toward:
                                continue
                            group_start = start[other * 8 + faces]
                            for position in range(group_start, start[other * 8 + faces + 1]):
                                code = codes[position]
                                px = (code >> 16) + sx * brick
                                py = ((code >> 8) & 255) + sy * brick
                                pz = (code & 255) + sz * brick
                                volume[ox + px, oy + py, oz + pz] = values[position]
                                listed[px, py] |= 1 << pz
            above = np.zeros((side, side), np.int64)
            for i in range(side):
                for j in range(side):
                    bits = 0
                    for k in range(side):
                        if volume[ox + i, oy + j, oz + k] > level:
                            bits |= 1 << k
                    above[i, j] = bits
            # Cubes past the grid's far face (an overhanging last brick) stay out.
            top_x = min(brick, cells - bx * brick)
            top_y = min(brick, cells - by * brick)
            keep_z = (1 << (min(brick, cells - bz * brick) + 1)) - 2  # bits 1 to top z
            for i in range(1, top_x + 1):
                for j in range(1, top_y + 1):
                    # A cube row's corners: the four point rows around it, at bits k - 1, k.
                    corners = listed[i - 1, j - 1] | listed[i - 1, j]
                    corners |= listed[i, j - 1] | listed[i, j]
                    any_above = above[i - 1, j - 1] | above[i - 1, j]
                    any_above |= above[i, j - 1] | above[i, j]
                    all_above = above[i - 1, j - 1] & above[i - 1, j]
                    all_above &= above[i, j - 1] & above[i, j]
                    corners |= corners << 1
                    any_above |= any_above << 1
                    all_above &= all_above << 1
                    flags = corners & any_above & ~all_above & keep_z
                    for k in range(1, brick + 1):
                        if (flags >> k) & 1:
                            mask[ox + i, oy + j, oz + k] = True

    return mark, group, build


def _assemble_numba(
    coarse: np.ndarray, indices: np.ndarray, values: np.ndarray, level: float, brick: int
) -> BrickVolume:
    mark, group, build = _numba_kernels()
    cells = 2 * (coarse.shape[0] - 1)
    per_axis = -(-cells // brick)
    side = brick + 1
    indices = np.ascontiguousarray(indices, np.int64)
    values = np.ascontiguousarray(values, np.float32)
    # Per fine index along an axis: its home brick (the last one for the grid's far face
    # when it ends a brick), its place there, and 1 where the brick below shares it.
    fine = np.arange(cells + 1)
    home = np.minimum(fine // brick, per_axis - 1)
    place = fine - home * brick
    shared = ((place == 0) & (fine > 0)).astype(np.int64)
    active = np.zeros(per_axis**3, np.bool_)
    mark(indices, home, shared, per_axis, active)
    brick_ids = np.flatnonzero(active)
    bricks = np.stack(np.unravel_index(brick_ids, (per_axis,) * 3), axis=1).astype(np.int64)
    slot_of = np.full(per_axis**3, -1, np.int64)
    slot_of[brick_ids] = np.arange(len(brick_ids))
    start = np.zeros(8 * len(bricks) + 1, np.int64)
    codes = np.empty(len(indices), np.int64)
    grouped = np.empty(len(indices), np.float32)
    group(indices, values, home, place, shared, per_axis, slot_of, start, (codes, grouped))
    across, layers = _layout(len(bricks))
    slots = np.arange(across * across * layers)
    tiles = np.stack([slots // (across * layers), slots // layers % across, slots % layers], 1)
    shape = (across * side, across * side, layers * side)
    volume = np.empty(shape, np.float32)
    mask = np.zeros(shape, np.bool_)
    build(
        np.ascontiguousarray(coarse, np.float32),
        codes,
        grouped,
        bricks,
        slot_of,
        start,
        tiles * side,
        np.float64(level),
        (volume, mask, brick, cells, np.float32(level + 1.0)),
    )
    return BrickVolume(volume, mask, bricks, brick, across, layers)


def assemble_bricks(
    coarse: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    level: float,
    brick: int,
    *,
    backend: Backend = "auto",
) -> BrickVolume:
    """Tile the bricks that hold listed fine points into one volume, with the cubes to mesh.

    Args:
        coarse: (n, n, n) float32 grid.
        indices: (k, 3) int64 fine indices in [0, 2n - 2].
        values: (k,) float32 field values at them.
        level: the iso-value.
        brick: cubes per brick side, even.
        backend: "numba" (compiled, needs numba), "numpy", or "auto": numba when installed,
            else NumPy with a log line. Both give the same volume and mask.

    Returns:
        The tiled :class:`BrickVolume`: every point of a used brick holds the listed value
        or the coarse grid's interpolation; the mask flags each cube with a listed corner,
        inside the grid, whose corners are not all on one side of ``level``.
    """
    if use_numba(backend, "marching cubes over bricks"):
        return _assemble_numba(coarse, indices, values, level, brick)
    return _assemble_numpy(coarse, indices, values, level, brick)
