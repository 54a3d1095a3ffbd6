"""Compiled (numba) twins of the bake's per-triangle and per-texel NumPy stages.

Each kernel repeats its NumPy twin's arithmetic operation by operation, in the same
order and the same precision (float32 where the twin rounds to float32), so the two give
the same texels; ``tests/geometry/test_bake_kernels.py`` compares them. The kernels are
built on first use and cached on disk by numba; :mod:`genesis3d.geometry.compiled`
chooses between them and the twins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from genesis3d.geometry.compiled import KERNEL_LOCK

__all__ = ["rasterize_compiled", "texel_frames_compiled", "tangent_normals_compiled"]


@functools.cache
def _raster_kernel() -> Callable[..., None]:
    import numba

    @numba.njit(cache=True, fastmath=False)
    def raster(corners, order, low, side, size, face_ids, weights):
        # Sequential: a texel on an edge shared by two triangles takes the later one in
        # ``order``, as in the NumPy twin.
        for face in order:
            ax, ay = corners[face, 0, 0], corners[face, 0, 1]
            bx, by = corners[face, 1, 0], corners[face, 1, 1]
            cx, cy = corners[face, 2, 0], corners[face, 2, 1]
            abx, aby, acx, acy = bx - ax, by - ay, cx - ax, cy - ay
            area = abx * acy - aby * acx
            if area == 0:
                area = 1.0
            span = side[face]
            for y in range(low[face, 1], min(low[face, 1] + span, size)):
                for x in range(low[face, 0], min(low[face, 0] + span, size)):
                    px, py = x - ax, y - ay
                    w1 = (px * acy - py * acx) / area
                    w2 = (abx * py - aby * px) / area
                    w0 = 1.0 - w1 - w2
                    if w0 >= -1e-9 and w1 >= -1e-9 and w2 >= -1e-9:
                        texel = y * size + x
                        face_ids[texel] = face
                        weights[texel, 0] = min(max(w0, 0.0), 1.0)
                        weights[texel, 1] = min(max(w1, 0.0), 1.0)
                        weights[texel, 2] = min(max(w2, 0.0), 1.0)

    return raster


def rasterize_compiled(
    corners: np.ndarray,
    order: np.ndarray,
    low: np.ndarray,
    side: np.ndarray,
    face_ids: np.ndarray,
    weights: np.ndarray,
    size: int,
) -> None:
    """Write each face's covered texels into ``face_ids`` and ``weights``, faces in ``order``.

    Args:
        corners: (m, 3, 2) float64 corners in texel-index coordinates.
        order: (k,) int64 faces to draw; later ones overwrite earlier ones.
        low: (m, 2) int64 first texel column and row of each face's box.
        side: (m,) int64 side of the square of texels tested from ``low``.
        face_ids: (S * S,) int64, written.
        weights: (S * S, 3) float32, written.
        size: S.
    """
    _raster_kernel()(corners, order, low, side, size, face_ids, weights)


@functools.cache
def _frames_kernel() -> Callable[..., None]:
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def frames(face_of, bary, faces, positions, normals, points, point_normals):

        def unit32(x, y, z, fx, fy, fz):
            # mesh_ops.unit_vectors: float64 norm, float64 divide, then float32. (An inner
            # function: a jitted helper captured from outside would keep numba from
            # caching the kernel.)
            length = np.sqrt(x * x + y * y + z * z)
            if length > 1e-20:
                scale = max(length, 1e-30)
                return np.float32(x / scale), np.float32(y / scale), np.float32(z / scale)
            return np.float32(fx), np.float32(fy), np.float32(fz)

        for i in numba.prange(len(face_of)):
            face = face_of[i]
            px = py = pz = 0.0
            nx = ny = nz = 0.0
            for j in range(3):
                w = np.float64(bary[i, j])
                v = faces[face, j]
                px += w * positions[v, 0]
                py += w * positions[v, 1]
                pz += w * positions[v, 2]
                nx += w * normals[v, 0]
                ny += w * normals[v, 1]
                nz += w * normals[v, 2]
            points[i, 0], points[i, 1], points[i, 2] = px, py, pz
            ux, uy, uz = unit32(nx, ny, nz, 0.0, 0.0, 1.0)
            point_normals[i, 0], point_normals[i, 1], point_normals[i, 2] = ux, uy, uz

    return frames


def texel_frames_compiled(
    face_of: np.ndarray,
    bary: np.ndarray,
    faces: np.ndarray,
    positions: np.ndarray,
    normals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each texel's point (k, 3) float64 and unit normal (k, 3) float32 on the light mesh.

    Args:
        face_of: (k,) int64 light face of each texel.
        bary: (k, 3) float32 barycentrics in it.
        faces: (m, 3) int64 light faces.
        positions: (n, 3) float64 vertices.
        normals: (n, 3) float64 vertex normals.
    """
    points = np.empty((len(face_of), 3), np.float64)
    point_normals = np.empty((len(face_of), 3), np.float32)
    with KERNEL_LOCK:
        _frames_kernel()(face_of, bary, faces, positions, normals, points, point_normals)
    return points, point_normals


@functools.cache
def _tangent_kernel() -> Callable[..., None]:
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def encode(  # noqa: PLR0913
        face_of, bary, faces, point_normals, tangents, dense_bary, dense_corner_faces,
        dense_faces, dense_normals, out,
    ):  # fmt: skip
        f32 = np.float32

        def unit32(x, y, z, fx, fy, fz):
            # mesh_ops.unit_vectors: float64 norm, float64 divide, then float32. (An inner
            # function: a jitted helper captured from outside would keep numba from
            # caching the kernel.)
            length = np.sqrt(x * x + y * y + z * z)
            if length > 1e-20:
                scale = max(length, 1e-30)
                return np.float32(x / scale), np.float32(y / scale), np.float32(z / scale)
            return np.float32(fx), np.float32(fy), np.float32(fz)

        for i in numba.prange(len(face_of)):
            # The dense surface's normal at the projected point.
            dx = dy = dz = 0.0
            dense_face = dense_corner_faces[i]
            for j in range(3):
                w = np.float64(dense_bary[i, j])
                v = dense_faces[dense_face, j]
                dx += w * np.float64(dense_normals[v, 0])
                dy += w * np.float64(dense_normals[v, 1])
                dz += w * np.float64(dense_normals[v, 2])
            dx, dy, dz = unit32(dx, dy, dz, 0.0, 0.0, 1.0)
            # The light mesh's tangent frame, as viewers build it (see bake._tangent_space).
            face = face_of[i]
            tx = ty = tz = 0.0
            for j in range(3):
                w = np.float64(bary[i, j])
                v = faces[face, j]
                tx += w * tangents[v, 0]
                ty += w * tangents[v, 1]
                tz += w * tangents[v, 2]
            nx, ny, nz = point_normals[i, 0], point_normals[i, 1], point_normals[i, 2]
            along = tx * np.float64(nx) + ty * np.float64(ny) + tz * np.float64(nz)
            tx, ty, tz = unit32(
                tx - np.float64(nx) * along,
                ty - np.float64(ny) * along,
                tz - np.float64(nz) * along,
                1.0,
                0.0,
                0.0,
            )
            sign = tangents[faces[face, 0], 3]
            bx = np.float64(ny * tz - nz * ty) * sign
            by = np.float64(nz * tx - nx * tz) * sign
            bz = np.float64(nx * ty - ny * tx) * sign
            lx = np.float64(dx * tx + dy * ty + dz * tz)
            ly = np.float64(dx) * bx + np.float64(dy) * by + np.float64(dz) * bz
            lz = np.float64(dx * nx + dy * ny + dz * nz)
            lz = max(lz, 1e-3)  # never point into the surface
            ux, uy, uz = unit32(lx, ly, lz, 0.0, 0.0, 1.0)
            for axis, value in enumerate((ux, uy, uz)):
                scaled = (value * f32(0.5) + f32(0.5)) * f32(255.0)
                out[i, axis] = np.uint8(min(max(np.rint(scaled), f32(0.0)), f32(255.0)))

    return encode


def tangent_normals_compiled(
    face_of: np.ndarray,
    bary: np.ndarray,
    faces: np.ndarray,
    point_normals: np.ndarray,
    tangents: np.ndarray,
    dense_bary: np.ndarray,
    dense_face_of: np.ndarray,
    dense_faces: np.ndarray,
    dense_normals: np.ndarray,
) -> np.ndarray:
    """The tangent-space normal map's texels, encoded: (k, 3) uint8.

    Args:
        face_of: (k,) int64 light face of each texel; ``bary`` (k, 3) float32 in it.
        faces: (m, 3) int64 light faces.
        point_normals: (k, 3) float32 unit light-mesh normals at the texels.
        tangents: (n, 4) float64 light vertex tangents (w: handedness).
        dense_bary: (k, 3) float32 barycentrics of the projected points in
            ``dense_face_of`` (k,) int64 dense faces.
        dense_faces: (M, 3) int64; ``dense_normals`` (N, 3) float32 unit vertex normals.
    """
    out = np.empty((len(face_of), 3), np.uint8)
    with KERNEL_LOCK:
        _tangent_kernel()(
            face_of,
            bary,
            faces,
            point_normals,
            tangents,
            dense_bary,
            dense_face_of,
            dense_faces,
            dense_normals,
            out,
        )
    return out
