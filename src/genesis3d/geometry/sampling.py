"""Sampling a textured mesh's surface as flat Gaussian splats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genesis3d.geometry.frames import matrices_to_quaternions
from genesis3d.geometry.mesh_ops import face_normals, unit_vectors


@dataclass(frozen=True)
class SurfaceSplats:
    """Fields of Gaussian splats sampled on a surface (see :class:`genesis3d.assets.SplatAsset`).

    Attributes:
        means: (n, 3) float32.
        scales: (n, 3) float32 linear; the third axis is the surface normal.
        rotations: (n, 4) float32 unit quaternions (w, x, y, z).
        opacities: (n,) float32.
        colors: (n, 3) float32 in [0, 1].
    """

    means: np.ndarray
    scales: np.ndarray
    rotations: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray


def sample_texture(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup.

    Args:
        texture: (H, W, C) uint8.
        uvs: (n, 2) float in [0, 1], glTF convention (v down, texel centres at (i + 0.5) / size).

    Returns:
        (n, C) float32 in [0, 1].
    """
    height, width = texture.shape[:2]
    x = np.clip(uvs[:, 0] * width - 0.5, 0.0, width - 1.0)
    y = np.clip(uvs[:, 1] * height - 0.5, 0.0, height - 1.0)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    values = texture.astype(np.float32) / 255.0
    top = values[y0, x0] * (1 - fx) + values[y0, x1] * fx
    bottom = values[y1, x0] * (1 - fx) + values[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def sample_surface_splats(
    positions: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    texture: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    opacity: float = 0.95,
    flatness: float = 0.1,
) -> SurfaceSplats:
    """Sample ``count`` flat Gaussians uniformly by area over a textured surface.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int.
        uvs: (n, 2) float texture coordinates.
        texture: (H, W, 3|4) uint8 base colour.
        count: number of splats.
        rng: source of every random draw.
        opacity: opacity of every splat.
        flatness: thickness along the normal relative to the in-plane size.

    Returns:
        The :class:`SurfaceSplats`: in-plane size from the sample spacing sqrt(area / count),
        oriented in the face's tangent frame.
    """
    weighted = face_normals(positions, faces)
    areas = 0.5 * np.linalg.norm(weighted, axis=1)
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    root = np.sqrt(r1)
    bary = np.stack([1 - root, root * (1 - r2), root * r2], axis=1)
    corners = faces[chosen]
    means = np.einsum("nk,nkd->nd", bary, positions[corners].astype(np.float64))
    texcoords = np.einsum("nk,nkd->nd", bary, uvs[corners].astype(np.float64))
    colors = sample_texture(texture, texcoords)[:, :3]

    normal = unit_vectors(weighted[chosen]).astype(np.float64)
    edge = positions[corners[:, 1]].astype(np.float64) - positions[corners[:, 0]]
    tangent = unit_vectors(edge - (edge * normal).sum(axis=1, keepdims=True) * normal).astype(
        np.float64
    )
    bitangent = np.cross(normal, tangent)
    rotations = matrices_to_quaternions(np.stack([tangent, bitangent, normal], axis=2))

    spacing = float(np.sqrt(areas.sum() / count))
    scales = np.tile([spacing * 0.7, spacing * 0.7, spacing * 0.7 * flatness], (count, 1))
    return SurfaceSplats(
        means=means.astype(np.float32),
        scales=scales.astype(np.float32),
        rotations=rotations.astype(np.float32),
        opacities=np.full(count, opacity, np.float32),
        colors=colors,
    )
