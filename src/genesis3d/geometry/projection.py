"""Closest points on a dense surface for the texels of a bake, preferring faces that agree.

:func:`project_to_surface` finds each query point's candidate faces (the nearest dense face
centroids, scipy cKDTree) and picks one by the exact point-triangle distance: faces that
face away from the query's normal are only used when no candidate faces along it (so the
two sides of a thin part keep their own colours), and near-ties go to the lowest face id, so
texels whose closest point lies on a shared edge or vertex all take the same face (no
per-texel face flicker).

With numba installed (the ``export`` extra) the candidates come from a compiled search of
a uniform grid of the centroids (:mod:`genesis3d.geometry.centroid_grid`) and the pick,
barycentrics included, runs in one compiled loop over points and candidates; without it,
from the k-d tree and the same arithmetic in vectorised NumPy.
Both give the same faces and points (``tests/geometry/test_projection.py`` compares them;
the candidate sets differ only in the order of exactly equidistant centroids).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from genesis3d.geometry.attributes import SurfacePoints
from genesis3d.geometry.centroid_grid import CentroidGrid
from genesis3d.geometry.compare import closest_point_on_triangles
from genesis3d.geometry.compiled import KERNEL_LOCK, Backend, use_numba
from genesis3d.geometry.mesh_ops import face_normals

logger = logging.getLogger(__name__)

__all__ = ["Backend", "project_to_surface"]

#: Points per nearest-neighbour query block (bounds the candidate table), and per NumPy
#: pick block: (8192 x 8) candidate pairs keep the temporaries in cache, which halves the
#: time of this memory-bound arithmetic.
_QUERY_BLOCK = 1 << 18
_NUMPY_BLOCK = 1 << 13
#: points per work item of the compiled pick (their scratch arrays are allocated once)
_PICK_CHUNK = 1024


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chosen face (k,) int64, closest point (k, 3) float64 and its barycentrics (k, 3)
    float32 in that face, of (k, 3) float64 queries.

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
    return picks, chosen, _barycentrics_3d(chosen, dense_positions[dense_faces[picks]])


@functools.cache
def _numba_kernel() -> Callable[..., None]:
    """The compiled pick: the arithmetic of :func:`_pick_numpy` and :func:`_barycentrics_3d`,
    one point per iteration."""
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def pick(query, normals, near, positions, faces, face_normal, picks, chosen, weights):  # noqa: PLR0912, PLR0915
        count, candidates = near.shape
        for chunk in numba.prange((count + _PICK_CHUNK - 1) // _PICK_CHUNK):
            distances = np.empty(candidates)
            xs = np.empty(candidates)
            ys = np.empty(candidates)
            zs = np.empty(candidates)
            for i in range(chunk * _PICK_CHUNK, min(count, (chunk + 1) * _PICK_CHUNK)):
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
                # _barycentrics_3d of the chosen point in its face.
                a = positions[faces[best_face, 0]]
                b = positions[faces[best_face, 1]]
                c = positions[faces[best_face, 2]]
                v0x, v0y, v0z = b[0] - a[0], b[1] - a[1], b[2] - a[2]
                v1x, v1y, v1z = c[0] - a[0], c[1] - a[1], c[2] - a[2]
                v2x, v2y, v2z = best_x - a[0], best_y - a[1], best_z - a[2]
                d00 = v0x * v0x + v0y * v0y + v0z * v0z
                d01 = v0x * v1x + v0y * v1y + v0z * v1z
                d11 = v1x * v1x + v1y * v1y + v1z * v1z
                d20 = v2x * v0x + v2y * v0y + v2z * v0z
                d21 = v2x * v1x + v2y * v1y + v2z * v1z
                denominator = d00 * d11 - d01 * d01
                if not abs(denominator) > 1e-300:
                    denominator = 1.0
                w1 = (d11 * d20 - d01 * d21) / denominator
                w2 = (d00 * d21 - d01 * d20) / denominator
                w0 = min(max(1.0 - w1 - w2, 0.0), 1.0)
                w1 = min(max(w1, 0.0), 1.0)
                w2 = min(max(w2, 0.0), 1.0)
                total = max(w0 + w1 + w2, 1e-12)
                weights[i, 0] = w0 / total
                weights[i, 1] = w1 / total
                weights[i, 2] = w2 / total

    return pick


def _pick_numba(
    query: np.ndarray,
    normals: np.ndarray,
    near: np.ndarray,
    dense_positions: np.ndarray,
    dense_faces: np.ndarray,
    face_normal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_pick_numpy` as one compiled parallel loop."""
    picks = np.empty(len(near), np.int64)
    chosen = np.empty((len(near), 3), np.float64)
    weights = np.empty((len(near), 3), np.float32)
    kernel = _numba_kernel()
    with KERNEL_LOCK:
        kernel(
            np.ascontiguousarray(query),
            np.ascontiguousarray(normals),
            np.ascontiguousarray(near),
            dense_positions,
            dense_faces,
            face_normal,
            picks,
            chosen,
            weights,
        )
    return picks, chosen, weights


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

    compiled = use_numba(backend, "project_to_surface")
    pick = _pick_numba if compiled else _pick_numpy
    dense_positions = np.ascontiguousarray(dense_positions, np.float64)
    dense_faces = np.ascontiguousarray(dense_faces, np.int64)
    face_normal = face_normals(dense_positions, dense_faces)
    centres = dense_positions[dense_faces].mean(axis=1)
    if compiled:
        grid = CentroidGrid(centres, 0.5 * np.linalg.norm(face_normal, axis=1))
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
        picks, chosen, weights = pick(
            query,
            np.asarray(normals[block], np.float64),
            near,
            dense_positions,
            dense_faces,
            face_normal,
        )
        out_positions[block] = chosen
        out_faces[block] = picks
        out_weights[block] = weights
    return SurfacePoints(out_positions, out_faces, out_weights)
