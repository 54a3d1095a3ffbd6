"""Marching cubes over the cubes of a grid whose eight corners are all listed points.

A grid of ``size`` points per axis is known only at a list of points (row-major order) with
their values; marching cubes triangulates every cube whose eight corners are all listed and
skips the others, as a grid holding NaN at the other points would be triangulated (the
official TripoSG extraction hands such a grid to its dual marching cubes). The triangles come
from :func:`~genesis3d.geometry.cube_tables.triangle_table`. A vertex is the crossing on one
grid edge, made once, the first time a cube (in row-major order of the cubes' lowest
corners) asks for it, so the mesh needs no welding.

The compiled kernel (numba, the ``export`` extra) keeps each row of points along the last
axis as bit sets (listed, above the level), 64 points a word: the cubes of a row ``(x, y)``
whose corners are all listed and not all on one side are a few AND and OR of the words of
the four point rows around it, and a corner's value is found by counting the listed bits
before it. The vertices of grid edges are kept in per-plane tables stamped with their
plane, so nothing is cleared between planes. The NumPy twin gathers every cube at once and
numbers the vertices by first use; both give the same arrays
(``tests/geometry/test_sparse_cubes.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from genesis3d.errors import ExtractionError
from genesis3d.geometry.compiled import Backend, use_numba
from genesis3d.geometry.cube_tables import (
    CORNERS,
    EDGE_AXIS,
    EDGES,
    crossing_table,
    triangle_table,
)


def _numpy_cubes(
    points: np.ndarray, values: np.ndarray, size: int, level: np.float32
) -> tuple[np.ndarray, np.ndarray]:
    counts, table = triangle_table()
    if not len(points):
        return np.empty((0, 3), np.float32), np.empty((0, 3), np.int32)
    point_keys = (points[:, 0] * size + points[:, 1]) * size + points[:, 2]
    # Each cube by its lowest corner, a listed point (row-major order already). Corner
    # 2 r + 1 is the point after corner 2 r when that one's z + 1 is listed; corners 2, 4
    # and 6 are searched, each among the cubes still complete.
    steps = point_keys[1:] == point_keys[:-1] + 1
    has_next = np.append(steps, False)
    lowest = np.flatnonzero((points < size - 1).all(axis=1) & has_next)
    others: list[np.ndarray] = []
    for offset in (size, size * size, size * size + size):
        target = point_keys[lowest] + offset
        found = np.searchsorted(point_keys, target).clip(max=len(point_keys) - 1)
        complete = (point_keys[found] == target) & has_next[found]
        lowest = lowest[complete]
        others = [column[complete] for column in others] + [found[complete]]
    where = np.repeat(np.stack([lowest, *others], axis=1), 2, axis=1)
    where[:, 1::2] += 1
    cubes = points[where[:, 0]]
    corner_values = values[where]
    # Bit c of the case is corner c (4 dx + 2 dy + dz).
    case = np.packbits(corner_values > level, axis=1, bitorder="little")[:, 0].astype(np.int64)
    active = (case > 0) & (case < 255)
    cubes, case, corner_values = cubes[active], case[active], corner_values[active]
    per_cube = 3 * counts[case]
    cube_of = np.repeat(np.arange(len(cubes)), per_cube)
    slot = np.arange(len(cube_of)) - np.repeat(np.cumsum(per_cube) - per_cube, per_cube)
    edge = table[case[cube_of], slot]
    low_corner = EDGES[edge, 0]
    base = cubes[cube_of] + CORNERS[low_corner]
    axis = EDGE_AXIS[edge]
    edge_keys = ((base[:, 0] * size + base[:, 1]) * size + base[:, 2]) * 3 + axis
    # Vertices numbered as the kernel makes them: by the first cube that crosses their
    # edge, then by edge number within it.
    by_use = np.argsort(cube_of * 12 + edge, kind="stable")
    _, first, inverse = np.unique(edge_keys[by_use], return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids = np.empty(len(edge), np.int64)
    ids[by_use] = rank[inverse.reshape(-1)]
    faces = ids.reshape(-1, 3).astype(np.int32)
    made = by_use[first[order]]
    start = corner_values[cube_of[made], low_corner[made]]
    end = corner_values[cube_of[made], EDGES[edge[made], 1]]
    vertices = base[made].astype(np.float32)
    vertices[np.arange(len(made)), axis[made]] += (level - start) / (end - start)
    return vertices, faces


#: population count masks (SWAR) and the lowest set bit by the de Bruijn sequence: the bit,
#: isolated, times the sequence has a distinct top six bits for each position
_FIVES, _THREES = np.int64(0x5555555555555555), np.int64(0x3333333333333333)
_NIBBLES, _ONES = np.int64(0x0F0F0F0F0F0F0F0F), np.int64(0x0101010101010101)
_LOW63 = np.int64(0x7FFFFFFFFFFFFFFF)
_DEBRUIJN = np.int64(0x03F79D71B4CB0A89)
_LOWEST_BIT = np.zeros(64, np.int64)
for _bit in range(64):
    _LOWEST_BIT[((1 << _bit) * 0x03F79D71B4CB0A89 & (2**64 - 1)) >> 58] = _bit
del _bit


@functools.cache
def _kernels() -> tuple[Callable[..., bool], Callable[..., tuple[np.ndarray, np.ndarray]]]:
    import numba

    # The kernels call no other compiled function: numba's cache cannot key closures over
    # them, and would compile the kernels again in every process.

    @numba.njit(cache=True)
    def ordered(points, size):
        """0: in range and in row-major order, 1: in range, out of order, 2: out of range."""
        previous, state = -1, 0
        for k in range(points.shape[0]):
            x, y, z = points[k, 0], points[k, 1], points[k, 2]
            if min(x, y, z) < 0 or max(x, y, z) >= size:
                return 2
            key = (x * size + y) * size + z
            if key <= previous:
                state = 1
            previous = key
        return state

    @numba.njit(cache=True)
    def triangulate(points, values, size, level, crossed, corners, counts, edges, axes):
        plane = size * size
        words = (size + 63) // 64
        listed = np.zeros((plane, words + 1), np.int64)  # a zero word past the row's end
        above = np.zeros((plane, words + 1), np.int64)
        starts = np.zeros(plane + 1, np.int64)
        for k in range(points.shape[0]):
            row, z = points[k, 0] * size + points[k, 1], points[k, 2]
            listed[row, z >> 6] |= np.int64(1) << (z & 63)
            if values[k] > level:
                above[row, z >> 6] |= np.int64(1) << (z & 63)
            starts[row + 1] += 1
        for row in range(plane):
            starts[row + 1] += starts[row]
        # Listed points before each word of a row, from the row's start.
        before = np.empty((plane, words), np.int64)
        for row in range(plane):
            total = starts[row]
            for w in range(words):
                before[row, w] = total
                word = listed[row, w]  # population count, SWAR (masks make the shifts safe)
                word = word - ((word >> 1) & _FIVES)
                word = (word & _THREES) + ((word >> 2) & _THREES)
                total += (((word + (word >> 4)) & _NIBBLES) * _ONES) >> 56
        # Vertex tables, one after the other: the x edges of the current slab, then the y
        # edges and the z edges of its two planes (by plane parity); each entry is
        # (plane + 1) << 32 | vertex.
        vertex_of = np.zeros(5 * plane, np.int64)
        # Bounds: a cube per listed point (its lowest corner) with the table's most triangles,
        # and three edges from each point; pages are touched only as they are written.
        vertices = np.empty((3 * points.shape[0], 3), np.float32)
        faces = np.empty((counts.max() * points.shape[0], 3), np.int32)
        made, drawn = 0, 0
        rows = np.empty(4, np.int64)
        corner = np.empty(8, np.float32)
        ids = np.empty(12, np.int64)
        for x in range(size - 1):
            for y in range(size - 1):
                complete = True
                for r in range(4):  # the point rows (x + dx, y + dy), r = 2 dx + dy
                    rows[r] = (x + (r >> 1)) * size + y + (r & 1)
                    complete = complete and starts[rows[r] + 1] > starts[rows[r]]
                if not complete:
                    continue
                r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
                for w in range(words):
                    every = listed[r0, w] & listed[r1, w] & listed[r2, w] & listed[r3, w]
                    if every == 0:
                        continue
                    after = (
                        listed[r0, w + 1]
                        & listed[r1, w + 1]
                        & listed[r2, w + 1]
                        & listed[r3, w + 1]
                    )
                    # Bit z of a row shifted down by one is its bit z + 1.
                    cubes = every & (((every >> 1) & _LOW63) | (after << 63))
                    high = above[r0, w] & above[r1, w] & above[r2, w] & above[r3, w]
                    high_after = (
                        above[r0, w + 1] & above[r1, w + 1] & above[r2, w + 1] & above[r3, w + 1]
                    )
                    some = above[r0, w] | above[r1, w] | above[r2, w] | above[r3, w]
                    some_after = (
                        above[r0, w + 1] | above[r1, w + 1] | above[r2, w + 1] | above[r3, w + 1]
                    )
                    cubes &= ~(high & (((high >> 1) & _LOW63) | (high_after << 63)))
                    cubes &= some | ((some >> 1) & _LOW63) | (some_after << 63)
                    while cubes:
                        lowest = cubes & -cubes
                        cubes ^= lowest
                        z = w * 64 + _LOWEST_BIT[((lowest * _DEBRUIJN) >> 58) & 63]
                        case = 0
                        for r in range(4):
                            # The row's listed points before z: its value's place.
                            word = listed[rows[r], w] & (lowest - 1)
                            word = word - ((word >> 1) & _FIVES)
                            word = (word & _THREES) + ((word >> 2) & _THREES)
                            k = before[rows[r], w] + (
                                (((word + (word >> 4)) & _NIBBLES) * _ONES) >> 56
                            )
                            corner[2 * r], corner[2 * r + 1] = values[k], values[k + 1]
                        for c in range(8):
                            if corner[c] > level:
                                case |= 1 << c
                        for slot_e in range(crossed[case, 0]):
                            e = crossed[case, 1 + slot_e]
                            low = edges[e, 0]
                            bx, by, bz = x + (low >> 2), y + (low >> 1 & 1), z + (low & 1)
                            axis = axes[e]
                            slot = by * size + bz
                            if axis == 0:
                                table_slot = slot
                            else:
                                table_slot = (2 * axis - 1 + (bx & 1)) * plane + slot
                            stamp = np.int64(bx + 1)
                            entry = vertex_of[table_slot]
                            if entry >> 32 == stamp:
                                ids[slot_e] = entry & 0xFFFFFFFF
                            else:
                                start, end = corner[low], corner[edges[e, 1]]
                                vertices[made, 0] = bx
                                vertices[made, 1] = by
                                vertices[made, 2] = bz
                                vertices[made, axis] += (level - start) / (end - start)
                                vertex_of[table_slot] = stamp << 32 | made
                                ids[slot_e] = made
                                made += 1
                        for t in range(counts[case]):
                            faces[drawn + t, 0] = ids[corners[case, 3 * t]]
                            faces[drawn + t, 1] = ids[corners[case, 3 * t + 1]]
                            faces[drawn + t, 2] = ids[corners[case, 3 * t + 2]]
                        drawn += counts[case]
        return vertices[:made].copy(), faces[:drawn].copy()

    return ordered, triangulate


def marching_cubes_listed(
    indices: np.ndarray,
    values: np.ndarray,
    size: int,
    level: float = 0.0,
    *,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the cubes whose eight corners are all listed points.

    Args:
        indices: (k, 3) int grid indices in [0, size - 1], distinct; fastest in row-major
            order (sorted here otherwise).
        values: (k,) float32 field values at them, finite.
        size: grid points per axis.
        level: the iso-value; a corner is above it when its value is larger.
        backend: "numba" (compiled, needs numba), "numpy", or "auto" (numba when
            installed); the same arrays either way.

    Returns:
        (vertices (v, 3) float32 in grid-index units, faces (f, 3) int32) whose right-hand
        normals point toward larger values; empty when no such cube crosses ``level``.

    Raises:
        ExtractionError: an index outside the grid or a point listed twice.
    """
    level = np.float32(level)
    indices = np.ascontiguousarray(indices, np.int64).reshape(-1, 3)
    values = np.ascontiguousarray(values, np.float32).reshape(-1)
    if len(indices) != len(values):
        raise ExtractionError(f"{len(indices)} indices but {len(values)} values")
    compiled = use_numba(backend, "marching cubes over listed points")
    if compiled:
        state = _kernels()[0](indices, size)
    else:
        inside = bool(((indices >= 0) & (indices < size)).all())
        keys = (indices[:, 0] * size + indices[:, 1]) * size + indices[:, 2]
        state = 2 if not inside else 0 if (keys[1:] > keys[:-1]).all() else 1
    if state == 2:
        raise ExtractionError(f"grid indices must lie in [0, {size - 1}]")
    if state == 1:
        indices, values = _sorted(indices, values, size)
    if compiled:
        crossed, corners, counts = crossing_table()
        triangulate = _kernels()[1]
        return triangulate(indices, values, size, level, crossed, corners, counts, EDGES, EDGE_AXIS)
    return _numpy_cubes(indices, values, size, level)


def _sorted(indices: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and values in row-major order; raises on a point listed twice."""
    keys = (indices[:, 0] * size + indices[:, 1]) * size + indices[:, 2]
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(np.diff(keys[order]) == 0)
    if len(repeated):
        raise ExtractionError(
            f"{len(repeated)} point(s) listed twice, the first at "
            f"{indices[order[repeated[0]]].tolist()}; list each point once"
        )
    return indices[order], values[order]
