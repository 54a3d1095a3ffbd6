"""Closest points on a dense surface for the texels of a bake, preferring faces that agree.

:func:`project_to_surface` finds each query point's candidate faces (the nearest dense face
centroids, scipy cKDTree) and picks one by the exact point-triangle distance: faces that
face away from the query's normal are only used when no candidate faces along it (so the
two sides of a thin part keep their own colours), and near-ties go to the lowest face id, so
texels whose closest point lies on a shared edge or vertex all take the same face (no
per-texel face flicker).

With numba installed (the ``export`` extra) the candidates come from a compiled search of
a uniform grid of the centroids and the pick runs in one compiled loop over points and
candidates; without it, from the k-d tree and the same arithmetic in vectorised NumPy.
Both give the same faces and points (``tests/geometry/test_projection.py`` compares them;
the candidate sets differ only in the order of exactly equidistant centroids).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from genesis3d.errors import ConfigError, MissingDependencyError
from genesis3d.geometry.attributes import SurfacePoints
from genesis3d.geometry.compare import closest_point_on_triangles
from genesis3d.geometry.mesh_ops import face_normals

logger = logging.getLogger(__name__)

__all__ = ["Backend", "project_to_surface"]

Backend = Literal["auto", "numba", "numpy"]

#: Points per nearest-neighbour query block (bounds the candidate table), and per NumPy
#: pick block: (8192 x 8) candidate pairs keep the temporaries in cache, which halves the
#: time of this memory-bound arithmetic.
_QUERY_BLOCK = 1 << 18
_NUMPY_BLOCK = 1 << 13
#: numba's fallback threading layer (workqueue, where neither OpenMP nor TBB is found)
#: aborts the process when two threads launch parallel kernels at once, as concurrent
#: server jobs would: the kernel runs under one lock (it uses every core anyway).
_KERNEL_LOCK = threading.Lock()
_NUMBA_INSTALL = "pip install 'genesis3d[export]'  (or: pip install numba)"


def _barycentrics_3d(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentrics of (k, 3) points (on their triangles' planes) in (k, 3, 3) triangles."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00 = np.einsum("ij,ij->i", v0, v0)
    d01 = np.einsum("ij,ij->i", v0, v1)
    d11 = np.einsum("ij,ij->i", v1, v1)
    d20 = np.einsum("ij,ij->i", v2, v0)
    d21 = np.einsum("ij,ij->i", v2, v1)
    denominator = d00 * d11 - d01 * d01
    denominator = np.where(np.abs(denominator) > 1e-300, denominator, 1.0)
    w1 = (d11 * d20 - d01 * d21) / denominator
    w2 = (d00 * d21 - d01 * d20) / denominator
    weights = np.clip(np.stack([1.0 - w1 - w2, w1, w2], axis=1), 0.0, 1.0)
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)


def _pick_numpy(
    query: np.ndarray,
    normals: np.ndarray,
    near: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    face_normal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen face (k,) int64 and closest point (k, 3) float64 of (k, 3) float64 queries.

    ``near`` (k, c) int64 holds each query's candidate faces, ``face_normal`` (m, 3)
    float64 the dense faces' normals.
    """
    count, candidates = near.shape
    picks = np.empty(count, np.int64)
    chosen = np.empty((count, 3), np.float64)
    for begin in range(0, count, _NUMPY_BLOCK):
        rows = slice(begin, begin + _NUMPY_BLOCK)
        block, point = near[rows], query[rows]
        size = len(block)
        repeated = np.repeat(point, candidates, axis=0)
        closest = closest_point_on_triangles(
            repeated, dense_positions[dense_faces[block.reshape(-1)]]
        )
        distance = ((closest - repeated) ** 2).sum(axis=1).reshape(size, candidates)
        facing = (face_normal[block] * normals[rows][:, None, :]).sum(axis=2) > 0
        # Away-facing faces lose to any facing one: the far side of a thin part keeps its
        # own colour.
        any_facing = facing.any(axis=1, keepdims=True)
        score = np.where(facing | ~any_facing, distance, np.inf)
        best = score.min(axis=1, keepdims=True)
        # Near-ties (a closest point on a shared edge or vertex) go to the lowest face id,
        # the same choice for every texel that meets that edge.
        tolerance = 1e-10 * np.maximum(best, 1e-30) + 1e-18
        tied = score <= best + tolerance
        pick = np.where(tied, block, np.iinfo(np.int64).max).min(axis=1)
        column = np.argmax(block == pick[:, None], axis=1)
        picks[rows] = pick
        chosen[rows] = closest.reshape(size, candidates, 3)[np.arange(size), column]
    return picks, chosen


@functools.cache
def _numba_kernel() -> Callable[..., None]:
    """The compiled pick: the arithmetic of :func:`_pick_numpy`, one point per iteration."""
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def pick(query, normals, near, positions, faces, face_normal, picks, chosen):  # noqa: PLR0915
        count, candidates = near.shape
        for i in numba.prange(count):
            px, py, pz = query[i, 0], query[i, 1], query[i, 2]
            any_facing = False
            for j in range(candidates):
                f = near[i, j]
                dot = (
                    face_normal[f, 0] * normals[i, 0]
                    + face_normal[f, 1] * normals[i, 1]
                    + face_normal[f, 2] * normals[i, 2]
                )
                if dot > 0:
                    any_facing = True
            best = np.inf
            best_face = -1
            best_x = best_y = best_z = 0.0
            distances = np.empty(candidates)
            xs = np.empty(candidates)
            ys = np.empty(candidates)
            zs = np.empty(candidates)
            for j in range(candidates):
                f = near[i, j]
                a = positions[faces[f, 0]]
                b = positions[faces[f, 1]]
                c = positions[faces[f, 2]]
                abx, aby, abz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
                acx, acy, acz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
                apx, apy, apz = px - a[0], py - a[1], pz - a[2]
                d1 = abx * apx + aby * apy + abz * apz
                d2 = acx * apx + acy * apy + acz * apz
                bpx, bpy, bpz = px - b[0], py - b[1], pz - b[2]
                d3 = abx * bpx + aby * bpy + abz * bpz
                d4 = acx * bpx + acy * bpy + acz * bpz
                cpx, cpy, cpz = px - c[0], py - c[1], pz - c[2]
                d5 = abx * cpx + aby * cpy + abz * cpz
                d6 = acx * cpx + acy * cpy + acz * cpz
                va = d3 * d6 - d5 * d4
                vb = d5 * d2 - d1 * d6
                vc = d1 * d4 - d3 * d2
                denominator = va + vb + vc
                if not abs(denominator) > 1e-300:
                    denominator = 1.0
                v, w = vb / denominator, vc / denominator
                # Later regions win, as in the sequential region test.
                if va <= 0 and d4 - d3 >= 0 and d5 - d6 >= 0:
                    t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
                    v, w = 1.0 - t, t
                if vb <= 0 and d2 >= 0 and d6 <= 0:
                    v, w = 0.0, d2 / (d2 - d6)
                if vc <= 0 and d1 >= 0 and d3 <= 0:
                    v, w = d1 / (d1 - d3), 0.0
                if d6 >= 0 and d5 <= d6:
                    v, w = 0.0, 1.0
                if d3 >= 0 and d4 <= d3:
                    v, w = 1.0, 0.0
                if d1 <= 0 and d2 <= 0:
                    v, w = 0.0, 0.0
                x = a[0] + v * abx + w * acx
                y = a[1] + v * aby + w * acy
                z = a[2] + v * abz + w * acz
                xs[j], ys[j], zs[j] = x, y, z
                dot = (
                    face_normal[f, 0] * normals[i, 0]
                    + face_normal[f, 1] * normals[i, 1]
                    + face_normal[f, 2] * normals[i, 2]
                )
                if dot > 0 or not any_facing:
                    ex, ey, ez = x - px, y - py, z - pz
                    distances[j] = ex * ex + ey * ey + ez * ez
                else:
                    distances[j] = np.inf
                best = min(best, distances[j])
            tolerance = 1e-10 * max(best, 1e-30) + 1e-18
            for j in range(candidates):
                f = near[i, j]
                if distances[j] <= best + tolerance and (best_face < 0 or f < best_face):
                    best_face = f
                    best_x, best_y, best_z = xs[j], ys[j], zs[j]
            picks[i] = best_face
            chosen[i, 0], chosen[i, 1], chosen[i, 2] = best_x, best_y, best_z

    return pick


def _pick_numba(
    query: np.ndarray,
    normals: np.ndarray,
    near: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    face_normal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_pick_numpy` as one compiled parallel loop."""
    picks = np.empty(len(near), np.int64)
    chosen = np.empty((len(near), 3), np.float64)
    kernel = _numba_kernel()
    with _KERNEL_LOCK:
        kernel(
            np.ascontiguousarray(query),
            np.ascontiguousarray(normals),
            np.ascontiguousarray(near),
            dense_positions,
            dense_faces,
            face_normal,
            picks,
            chosen,
        )
    return picks, chosen


@functools.cache
def _numba_nearest() -> Callable[..., None]:
    """Compiled k nearest face centroids over a uniform grid (the k-d tree query's twin)."""
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def nearest(query, centres, ids, keys, starts, origin, cell, dims, max_ring, near):  # noqa: PLR0912
        count, wanted = near.shape
        for i in numba.prange(count):
            best = np.full(wanted, np.inf)
            best_id = np.full(wanted, -1, np.int64)
            found = 0
            home = np.empty(3, np.int64)
            for axis in range(3):
                home[axis] = np.int64(np.floor((query[i, axis] - origin[axis]) / cell))
            ring = 0
            while True:
                if ring > max_ring:
                    # Far from every centre in cell units (a point off the surface, or
                    # faces of very uneven size): left to the k-d tree.
                    near[i, 0] = -1
                    break
                for x in range(home[0] - ring, home[0] + ring + 1):
                    if x < 0 or x >= dims[0]:
                        continue
                    for y in range(home[1] - ring, home[1] + ring + 1):
                        if y < 0 or y >= dims[1]:
                            continue
                        for z in range(home[2] - ring, home[2] + ring + 1):
                            if z < 0 or z >= dims[2]:
                                continue
                            if max(abs(x - home[0]), abs(y - home[1]), abs(z - home[2])) != ring:
                                continue
                            key = (x * dims[1] + y) * dims[2] + z
                            slot = np.searchsorted(keys, key)
                            if slot >= len(keys) or keys[slot] != key:
                                continue
                            for j in range(starts[slot], starts[slot + 1]):
                                dx = centres[j, 0] - query[i, 0]
                                dy = centres[j, 1] - query[i, 1]
                                dz = centres[j, 2] - query[i, 2]
                                distance = dx * dx + dy * dy + dz * dz
                                face = ids[j]
                                last = wanted - 1
                                if distance > best[last] or (
                                    distance == best[last] and face > best_id[last]
                                ):
                                    continue
                                # Insert, keeping (distance, face id) ascending.
                                k = last
                                while k > 0 and (
                                    best[k - 1] > distance
                                    or (best[k - 1] == distance and best_id[k - 1] > face)
                                ):
                                    best[k] = best[k - 1]
                                    best_id[k] = best_id[k - 1]
                                    k -= 1
                                best[k] = distance
                                best_id[k] = face
                                found += 1
                # Every centre not visited yet lies outside the searched block of cells.
                reach = np.inf
                everything = True
                for axis in range(3):
                    low = query[i, axis] - (origin[axis] + (home[axis] - ring) * cell)
                    high = origin[axis] + (home[axis] + ring + 1) * cell - query[i, axis]
                    reach = min(reach, low, high)
                    if home[axis] - ring > 0 or home[axis] + ring < dims[axis] - 1:
                        everything = False
                if everything or (found >= wanted and best[wanted - 1] <= reach * reach):
                    break
                ring += 1
            if ring <= max_ring:
                for k in range(wanted):
                    near[i, k] = best_id[k]

    return nearest


#: rings of cells searched around a point before it is handed to the k-d tree
_MAX_RING = 6


class _CentroidGrid:
    """Dense face centroids bucketed in a uniform grid, for :func:`_numba_nearest`."""

    def __init__(self, centres: np.ndarray, areas: np.ndarray) -> None:
        low, high = centres.min(axis=0), centres.max(axis=0)
        # About three faces' width per cell: the 8 nearest centres are nearly always
        # found in the 27 cells around a query (measured fastest among 1.5-4 widths).
        cell = 3.0 * float(np.sqrt(max(areas.mean(), 0.0)))
        if not cell > 0.0:
            cell = max(float((high - low).max()), 1.0) / max(len(centres) ** (1 / 3), 1.0)
        dims = np.maximum(np.floor((high - low) / cell).astype(np.int64) + 1, 1)
        index = np.floor((centres - low) / cell).astype(np.int64)
        index = np.minimum(index, dims - 1)
        keys = (index[:, 0] * dims[1] + index[:, 1]) * dims[2] + index[:, 2]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        new = np.ones(len(keys), bool)
        new[1:] = keys[1:] != keys[:-1]
        self.keys = keys[new]
        self.starts = np.append(np.flatnonzero(new), len(keys)).astype(np.int64)
        self.centres = np.ascontiguousarray(centres[order])
        self.ids = order.astype(np.int64)
        self.origin, self.cell, self.dims = low, cell, dims
        self._tree = None

    def query(self, points: np.ndarray, count: int) -> np.ndarray:
        """The ``count`` nearest centres of (k, 3) float64 points: (k, count) int64 face ids."""
        near = np.empty((len(points), count), np.int64)
        points = np.ascontiguousarray(points)
        kernel = _numba_nearest()
        with _KERNEL_LOCK:
            kernel(
                points,
                self.centres,
                self.ids,
                self.keys,
                self.starts,
                self.origin,
                self.cell,
                self.dims,
                _MAX_RING,
                near,
            )
        far = np.flatnonzero(near[:, 0] < 0)
        if len(far):
            # The search stops after _MAX_RING rings (its cost grows with the cube of the
            # ring); the few points beyond go to a k-d tree, the NumPy path's search.
            from scipy.spatial import cKDTree

            if self._tree is None:
                self._tree = cKDTree(self.centres)
            _, index = self._tree.query(points[far], k=count)
            near[far] = self.ids[np.asarray(index).reshape(len(far), count)]
        return near


def _choose_backend(backend: Backend) -> Backend:
    if backend not in ("auto", "numba", "numpy"):
        raise ConfigError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy":
        return backend
    if importlib.util.find_spec("numba") is not None:
        return "numba"
    if backend == "numba":
        raise MissingDependencyError("the compiled surface projection", "numba", _NUMBA_INSTALL)
    _log_numpy_fallback()
    return "numpy"


@functools.cache
def _log_numpy_fallback() -> None:
    logger.info(
        "project_to_surface: numba is not installed, projecting in NumPy (same result, "
        "about ten times slower); for speed: %s",
        _NUMBA_INSTALL,
    )


def project_to_surface(
    points: np.ndarray,
    normals: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    *,
    candidates: int = 8,
    tree: Any = None,
    backend: Backend = "auto",
) -> SurfacePoints:
    """Closest points on a dense surface, preferring faces that face the same way.

    Args:
        points: (k, 3) float query points (texels on the light mesh).
        normals: (k, 3) float unit normals of the light mesh at those points.
        dense_positions: (n, 3) float dense surface vertices.
        dense_faces: (m, 3) int dense surface faces.
        candidates: nearest face centroids tested exactly per point.
        tree: a scipy cKDTree over the dense face centroids, to reuse across calls of the
            NumPy backend (the compiled one searches a grid of its own).
        backend: "numba" (compiled, needs numba), "numpy", or "auto": numba when
            installed, else NumPy with a log line. Both give the same result.

    Returns:
        :class:`SurfacePoints` on the dense surface: positions (k, 3) float32, face_ids
        (k,) int64 and barycentrics (k, 3) float32.

    Raises:
        MissingDependencyError: ``backend="numba"`` without numba installed.
    """
    from scipy.spatial import cKDTree

    compiled = _choose_backend(backend) == "numba"
    pick = _pick_numba if compiled else _pick_numpy
    dense_positions = np.ascontiguousarray(dense_positions, np.float64)
    dense_faces = np.ascontiguousarray(dense_faces, np.int64)
    face_normal = face_normals(dense_positions, dense_faces)
    centres = dense_positions[dense_faces].mean(axis=1)
    if compiled:
        grid = _CentroidGrid(centres, 0.5 * np.linalg.norm(face_normal, axis=1))
    elif tree is None:
        tree = cKDTree(centres)
    candidates = int(min(candidates, len(dense_faces)))
    count = len(points)
    out_positions = np.empty((count, 3), np.float32)
    out_faces = np.empty(count, np.int64)
    out_weights = np.empty((count, 3), np.float32)
    for begin in range(0, count, _QUERY_BLOCK):
        block = slice(begin, begin + _QUERY_BLOCK)
        query = np.asarray(points[block], np.float64)
        if compiled:
            near = grid.query(query, candidates)
        else:
            _, near = tree.query(query, k=candidates, workers=-1)
            near = np.asarray(near, np.int64).reshape(len(query), candidates)
        picks, chosen = pick(
            query,
            np.asarray(normals[block], np.float64),
            near,
            dense_positions,
            dense_faces,
            face_normal,
        )
        out_positions[block] = chosen
        out_faces[block] = picks
        out_weights[block] = _barycentrics_3d(chosen, dense_positions[dense_faces[picks]])
    return SurfacePoints(out_positions, out_faces, out_weights)
