"""Sampling a textured mesh's surface as flat Gaussian splats."""

from __future__ import annotations

import numpy as np

from genesis3d.assets import SplatAsset
from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.frames import matrices_to_quaternions
from genesis3d.geometry.mesh_ops import face_normals, unit_vectors


def sample_texture(texture: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup with clamped edges.

    Args:
        texture: (H, W, C) uint8.
        uvs: (n, 2) float, glTF convention (v down, texel centres at (i + 0.5) / size).

    Returns:
        (n, C) float32 in [0, 1].
    """
    height, width = texture.shape[:2]
    x = np.clip(uvs[:, 0] * width - 0.5, 0.0, width - 1.0)
    y = np.clip(uvs[:, 1] * height - 0.5, 0.0, height - 1.0)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]

    def texel(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return texture[rows, cols].astype(np.float32)

    top = texel(y0, x0) * (1 - fx) + texel(y0, x1) * fx
    bottom = texel(y1, x0) * (1 - fx) + texel(y1, x1) * fx
    return ((top * (1 - fy) + bottom * fy) / 255.0).astype(np.float32)


def stratified_faces(areas: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``count`` faces with probability proportional to area, stratified.

    One uniform draw per equal slice of the cumulative area, so every face receives
    ``count * area / total`` samples give or take one (no clumps, no gaps).

    Args:
        areas: (m,) float face areas, not all zero.
        count: number of picks.
        rng: source of the random draws.

    Returns:
        (count,) int64 face indices, in increasing order.
    """
    cumulative = np.cumsum(areas, dtype=np.float64)
    targets = (np.arange(count) + rng.random(count)) * (cumulative[-1] / count)
    return np.minimum(np.searchsorted(cumulative, targets, side="right"), len(areas) - 1)


def sample_splats(
    positions: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray | None,
    uvs: np.ndarray,
    texture: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    opacity: float = 0.97,
    spread: float = 0.7,
    flatness: float = 0.1,
) -> dict[str, np.ndarray]:
    """Sample ``count`` flat Gaussians over a textured surface, uniformly by area.

    Each Gaussian lies tangent to the surface: its two in-plane standard deviations are
    ``spread`` times the sample spacing ``sqrt(area / count)`` and the third, along the
    normal, ``flatness`` times that.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices.
        normals: (n, 3) float unit vertex normals, interpolated for smooth orientation; None
            to use the flat face normals.
        uvs: (n, 2) float texture coordinates.
        texture: (H, W, 3|4) uint8 base colour.
        count: number of splats, >= 1.
        rng: source of every random draw.
        opacity: opacity of every splat, in (0, 1].
        spread: in-plane size relative to the sample spacing.
        flatness: size along the normal relative to the in-plane size.

    Returns:
        The fields of :class:`genesis3d.assets.SplatAsset`: ``means`` (count, 3),
        ``scales`` (count, 3) linear, ``rotations`` (count, 4) unit (w, x, y, z),
        ``opacities`` (count,), ``sh0`` (count, 3); all float32.

    Raises:
        ConfigError: for a count below 1 or an opacity outside (0, 1].
        InputError: for a surface of zero area.
    """
    if count < 1:
        raise ConfigError(f"the splat count must be at least 1, got {count}")
    if not 0.0 < opacity <= 1.0:
        raise ConfigError(f"the splat opacity must be in (0, 1], got {opacity}")
    positions = np.asarray(positions, np.float64)
    faces = np.asarray(faces, np.int64)
    weighted = face_normals(positions, faces)
    areas = 0.5 * np.linalg.norm(weighted, axis=1)
    total = float(areas.sum()) if len(areas) else 0.0
    if not total > 0.0:
        raise InputError("cannot sample splats on a surface of zero area; the mesh is empty")

    chosen = stratified_faces(areas, count, rng)
    root = np.sqrt(rng.random(count))
    second = rng.random(count)
    bary = np.stack([1.0 - root, root * (1.0 - second), root * second], axis=1)
    corners = faces[chosen]
    means = np.einsum("nk,nkd->nd", bary, positions[corners])
    texcoords = np.einsum("nk,nkd->nd", bary, np.asarray(uvs, np.float64)[corners])
    colors = sample_texture(texture, texcoords)[:, :3]

    if normals is None:
        normal = unit_vectors(weighted[chosen]).astype(np.float64)
    else:
        interpolated = np.einsum("nk,nkd->nd", bary, np.asarray(normals, np.float64)[corners])
        normal = unit_vectors(interpolated).astype(np.float64)
    # Tangent: the face's first edge projected on the tangent plane; the frame [t, n x t, n]
    # is right-handed, so it is a proper rotation.
    edge = positions[corners[:, 1]] - positions[corners[:, 0]]
    tangent = edge - np.sum(edge * normal, axis=1, keepdims=True) * normal
    tangent = unit_vectors(tangent, fallback=(1.0, 0.0, 0.0)).astype(np.float64)
    tangent = _orthogonalise(tangent, normal)
    bitangent = np.cross(normal, tangent)
    rotations = matrices_to_quaternions(np.stack([tangent, bitangent, normal], axis=2))

    size = spread * float(np.sqrt(total / count))
    scales = np.empty((count, 3), np.float32)
    scales[:, :2] = size
    scales[:, 2] = size * flatness
    return {
        "means": means.astype(np.float32),
        "scales": scales,
        "rotations": rotations.astype(np.float32),
        "opacities": np.full(count, opacity, np.float32),
        "sh0": SplatAsset.sh0_from_colors(colors),
    }


def _orthogonalise(tangent: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Make unit tangents (k, 3) exactly orthogonal to unit normals, replacing parallel ones."""
    tangent = tangent - np.sum(tangent * normal, axis=1, keepdims=True) * normal
    length = np.linalg.norm(tangent, axis=1, keepdims=True)
    # A tangent parallel to the normal (a fallback that happened to align): use any
    # direction perpendicular to the normal instead.
    bad = length[:, 0] < 1e-6
    if bad.any():
        axis = np.where(np.abs(normal[bad, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        other = axis - np.sum(axis * normal[bad], axis=1, keepdims=True) * normal[bad]
        tangent[bad] = other
        length[bad] = np.linalg.norm(other, axis=1, keepdims=True)
    return tangent / length
