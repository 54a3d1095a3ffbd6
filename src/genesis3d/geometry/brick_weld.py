"""Welding the mesh of tiled bricks back into one surface on the fine grid.

Marching cubes over :class:`~genesis3d.geometry.bricks.BrickVolume` makes a vertex on a face
that two bricks share once in each brick. Marching cubes puts an edge vertex at ``p + t e``
on the grid edge from ``p`` along axis ``e``, so two of its coordinates are whole; a copy is
keyed by that edge, or by the grid point ``p`` (``p + e``) when ``t`` lies within a few
float32 units of 0 (1), where rounding in the tiled volume may have put it exactly on the
point. ``t`` is recomputed from the edge's two values, which are the same in every brick, so
all copies get the same key whatever their rounding, and no tolerance search is needed.

With numba the keys and the merge are one compiled pass; without it, NumPy computes the same
keys and the same merge (``tests/geometry/test_isosurface.py`` compares them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from genesis3d.geometry.bricks import BrickVolume
from genesis3d.geometry.compiled import Backend, use_numba


def _reach(bricks: BrickVolume) -> float:
    """How close to 0 or 1 ``t`` must be for rounding in the tiled volume to reach the point:
    a few units of the coarsest float32 spacing there."""
    return 4.0 * float(np.spacing(np.float32(max(bricks.volume.shape))))


def _key_size(bricks: BrickVolume) -> int:
    return int(bricks.bricks.max(initial=0)) * bricks.brick + bricks.brick + 2


def _weld_numpy(
    vertices: np.ndarray, faces: np.ndarray, bricks: BrickVolume, level: float
) -> tuple[np.ndarray, np.ndarray]:
    side = bricks.brick + 1
    volume = bricks.volume
    place = np.floor(vertices / np.float32(side)).astype(np.int64)
    local = vertices.astype(np.float64) - place * side
    slot = (place[:, 0] * bricks.across + place[:, 1]) * bricks.layers + place[:, 2]
    origin = bricks.bricks[slot] * bricks.brick
    world = local + origin

    on_plane = np.flatnonzero(((local == 0) | (local == bricks.brick)).any(axis=1))
    nearest = np.rint(local[on_plane])
    whole = local[on_plane] == nearest
    wholes = whole.sum(axis=1)
    point = nearest.astype(np.int64) + origin[on_plane]
    code = np.full(len(on_plane), 3, np.int64)
    # Edge vertices: the fractional axis, the edge's lower end and t from its two values.
    edge = np.flatnonzero(wholes == 2)
    axis = np.argmin(whole[edge], axis=1)
    lower = nearest[edge].astype(np.int64)
    rows = np.arange(len(edge))
    lower[rows, axis] = np.floor(local[on_plane[edge], axis]).astype(np.int64)
    tiled = lower + place[on_plane[edge]] * side
    upper = tiled.copy()
    upper[rows, axis] += 1
    low_value = volume[tiled[:, 0], tiled[:, 1], tiled[:, 2]].astype(np.float64) - level
    high_value = volume[upper[:, 0], upper[:, 1], upper[:, 2]].astype(np.float64) - level
    # scikit-image's weights: 1 / (epsilon + |value|) at each end.
    epsilon = np.spacing(1.0)
    weight_low = 1.0 / (epsilon + np.abs(low_value))
    weight_high = 1.0 / (epsilon + np.abs(high_value))
    t = weight_high / (weight_low + weight_high)
    reach = _reach(bricks)
    lower += origin[on_plane[edge]]
    edge_point = lower.copy()
    edge_point[rows, axis] += (t > 1.0 - reach).astype(np.int64)
    on_edge = (t >= reach) & (t <= 1.0 - reach)
    point[edge] = np.where(on_edge[:, None], lower, edge_point)
    code[edge] = np.where(on_edge, axis, 3)
    keyed = on_plane[wholes >= 2]
    size = _key_size(bricks)
    key = ((point[:, 0] * size + point[:, 1]) * size + point[:, 2]) * 4 + code
    key = key[wholes >= 2]

    representative = np.arange(len(vertices))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    representative[keyed] = keyed[first[inverse]]
    keep = np.flatnonzero(representative == np.arange(len(vertices)))
    renumber = np.full(len(vertices), -1, np.int64)
    renumber[keep] = np.arange(len(keep))
    faces = renumber[representative][faces]
    faces = faces[
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    ]
    return world[keep].astype(np.float32), faces.astype(np.int32)


@functools.cache
def _numba_weld() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """:func:`_weld_numpy` as compiled loops over the vertices and faces."""
    import numba

    @numba.njit(cache=True)
    def weld(vertices, faces, bricks, brick, across, layers, volume, level, reach, size):
        side = brick + 1
        count = vertices.shape[0]
        world = np.empty((count, 3), np.float64)
        keys = np.full(count, -1, np.int64)
        epsilon = np.spacing(1.0)
        local = np.empty(3, np.float64)
        place = np.empty(3, np.int64)
        point = np.empty(3, np.int64)
        for vertex in range(count):
            for axis in range(3):
                place[axis] = np.int64(np.floor(vertices[vertex, axis] / np.float32(side)))
            slot = (place[0] * across + place[1]) * layers + place[2]
            on_plane = False
            wholes = 0
            for axis in range(3):
                local[axis] = np.float64(vertices[vertex, axis]) - place[axis] * side
                world[vertex, axis] = local[axis] + bricks[slot, axis] * brick
                if local[axis] == 0 or local[axis] == brick:
                    on_plane = True
                nearest = np.rint(local[axis])
                point[axis] = np.int64(nearest)
                if local[axis] == nearest:
                    wholes += 1
            if not on_plane or wholes < 2:
                continue
            code = 3
            if wholes == 2:
                fractional = 0
                for axis in range(3):
                    if local[axis] != np.rint(local[axis]):
                        fractional = axis
                        break
                point[fractional] = np.int64(np.floor(local[fractional]))
                x = point[0] + place[0] * side
                y = point[1] + place[1] * side
                z = point[2] + place[2] * side
                low_value = np.float64(volume[x, y, z]) - level
                if fractional == 0:
                    x += 1
                elif fractional == 1:
                    y += 1
                else:
                    z += 1
                high_value = np.float64(volume[x, y, z]) - level
                weight_low = 1.0 / (epsilon + abs(low_value))
                weight_high = 1.0 / (epsilon + abs(high_value))
                t = weight_high / (weight_low + weight_high)
                if t >= reach and t <= 1.0 - reach:
                    code = fractional
                elif t > 1.0 - reach:
                    point[fractional] += 1
            for axis in range(3):
                point[axis] += bricks[slot, axis] * brick
            keys[vertex] = ((point[0] * size + point[1]) * size + point[2]) * 4 + code

        # Each key's first vertex stands for all its copies.
        representative = np.arange(count)
        keyed = np.flatnonzero(keys >= 0)
        order = keyed[np.argsort(keys[keyed], kind="mergesort")]
        first = -1
        for position in range(len(order)):
            vertex = order[position]
            if position == 0 or keys[vertex] != keys[order[position - 1]]:
                first = vertex
            representative[vertex] = first
        renumber = np.full(count, -1, np.int64)
        kept = 0
        for vertex in range(count):
            if representative[vertex] == vertex:
                renumber[vertex] = kept
                kept += 1
        out_vertices = np.empty((kept, 3), np.float32)
        for vertex in range(count):
            if renumber[vertex] >= 0:
                for axis in range(3):
                    out_vertices[renumber[vertex], axis] = np.float32(world[vertex, axis])
        out_faces = np.empty((faces.shape[0], 3), np.int32)
        written = 0
        for face in range(faces.shape[0]):
            a = renumber[representative[faces[face, 0]]]
            b = renumber[representative[faces[face, 1]]]
            c = renumber[representative[faces[face, 2]]]
            if a != b and b != c and a != c:
                out_faces[written, 0], out_faces[written, 1], out_faces[written, 2] = a, b, c
                written += 1
        return out_vertices, out_faces[:written].copy()

    return weld


def weld_brick_vertices(
    vertices: np.ndarray,
    faces: np.ndarray,
    bricks: BrickVolume,
    level: float,
    *,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Fine-grid positions of the tiled volume's mesh, with the copies on shared faces merged.

    Copies of one key (see the module docstring) become one vertex, the first; triangles left
    with a repeated vertex are dropped.

    Args:
        vertices: (v, 3) float32 positions in the tiled volume's index units.
        faces: (f, 3) int faces.
        bricks: the :class:`~genesis3d.geometry.bricks.BrickVolume` that was triangulated.
        level: its iso-value.
        backend: "numba", "numpy" or "auto", as for
            :func:`~genesis3d.geometry.bricks.assemble_bricks`; the same result either way.

    Returns:
        (vertices (v', 3) float32 in fine grid-index units, faces (f', 3) int32).
    """
    vertices = np.ascontiguousarray(vertices, np.float32)
    faces = np.ascontiguousarray(faces, np.int64)
    if not use_numba(backend, "marching cubes over bricks"):
        return _weld_numpy(vertices, faces, bricks, level)
    return _numba_weld()(
        vertices,
        faces,
        bricks.bricks,
        bricks.brick,
        bricks.across,
        bricks.layers,
        bricks.volume,
        np.float64(level),
        _reach(bricks),
        _key_size(bricks),
    )
