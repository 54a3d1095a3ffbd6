"""Small operations on triangle meshes given as arrays."""

from __future__ import annotations

import numpy as np


def face_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (cross product of two edges; length = twice the area).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (m, 3) float64.
    """
    corners = positions[faces].astype(np.float64)
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def face_areas(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangle areas: (m,) float64."""
    return 0.5 * np.linalg.norm(face_normals(positions, faces), axis=1)


def unit_vectors(
    vectors: np.ndarray, fallback: tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """Normalise rows; rows of (near) zero length become ``fallback``.

    Args:
        vectors: (n, 3) float.

    Returns:
        (n, 3) float32 unit vectors.
    """
    vectors = np.asarray(vectors, np.float64)
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.where(length > 1e-20, vectors / np.maximum(length, 1e-30), fallback)
    return unit.astype(np.float32)


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (n, 3) float32 unit normals; a vertex with no area around it gets +Z.
    """
    weighted = face_normals(positions, faces)
    normals = np.zeros((len(positions), 3))
    for corner in range(3):
        np.add.at(normals, faces[:, corner], weighted)
    return unit_vectors(normals)


def weld_exact(positions: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with bit-identical positions (as UV seams split them).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (welded positions (k, 3), faces (m, 3) int64 into them).
    """
    unique, inverse = np.unique(np.ascontiguousarray(positions), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[faces].astype(np.int64)


def split_by_face_group(
    faces: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duplicate the vertices shared by faces of different groups (a UV seam).

    Args:
        faces: (m, 3) int.
        groups: (m,) int group of each face (e.g. 0 front, 1 back).

    Returns:
        (source vertex of each new vertex (k,), group of each new vertex (k,), new faces (m, 3) int32).
    """
    keys = faces.astype(np.int64) * 8 + groups.astype(np.int64)[:, None]
    unique, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    return (
        (unique // 8).astype(np.int64),
        (unique % 8).astype(np.int64),
        inverse.reshape(-1, 3).astype(np.int32),
    )
