"""Small operations on triangle meshes given as arrays."""

from __future__ import annotations

import numpy as np

from genesis3d.errors import InputError
from genesis3d.geometry.compiled import face_normals_kernel

#: Meshes with at least this many faces get their face normals from a compiled loop (same
#: arithmetic; on millions of faces the NumPy gathers and temporaries cost seconds).
_COMPILED_FACES = 1 << 12


def face_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (cross product of two edges; length = twice the area).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (m, 3) float64.
    """
    faces = np.asarray(faces)
    # Out-of-range indices never reach the compiled loop (it does not check them).
    if len(faces) >= _COMPILED_FACES and faces.min() >= 0 and faces.max() < len(positions):
        kernel = face_normals_kernel()
        if kernel is not None:
            return kernel(np.ascontiguousarray(positions), np.ascontiguousarray(faces))
    return _face_normals_numpy(positions, faces)


def _face_normals_numpy(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """:func:`face_normals` in NumPy (the compiled kernel's twin)."""
    # Corner by corner and component by component: no (m, 3, 3) float64 copy, and the
    # same arithmetic as ``np.cross`` of the float64 edges.
    first = positions[faces[:, 0]].astype(np.float64)
    edge_1 = positions[faces[:, 1]].astype(np.float64) - first
    edge_2 = positions[faces[:, 2]].astype(np.float64)
    edge_2 -= first
    normals = np.empty((len(faces), 3), np.float64)
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        np.multiply(edge_1[:, u], edge_2[:, v], out=normals[:, axis])
        normals[:, axis] -= edge_1[:, v] * edge_2[:, u]
    return normals


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


def _sum_at_corners(faces: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Per-vertex sums of per-face rows: (count, c) float64.

    ``values`` (m, c) are added to each of a face's three vertices, corner 0 of every face
    first, then corner 1, then corner 2: the order (and so the rounding) of
    ``np.add.at`` called corner by corner, through ``np.bincount``, ten times faster.
    """
    index = np.asarray(faces, np.int64).T.reshape(-1)
    out = np.empty((count, values.shape[1]), np.float64)
    for column in range(values.shape[1]):
        weights = np.tile(np.asarray(values[:, column], np.float64), 3)
        out[:, column] = np.bincount(index, weights=weights, minlength=count)[:count]
    return out


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (n, 3) float32 unit normals; a vertex with no area around it gets +Z.
    """
    return unit_vectors(_sum_at_corners(faces, face_normals(positions, faces), len(positions)))


def weld_exact(positions: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with equal positions (as UV seams split them).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.

    Returns:
        (welded positions (k, 3) in order of first sorted occurrence, faces (m, 3) int64
        into them).
    """
    positions = np.asarray(positions)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(positions) == 0:
        return positions.reshape(0, 3), faces
    # A lexicographic sort of the three columns is several times faster than
    # np.unique(axis=0), which compares rows as opaque byte strings.
    order = np.lexsort(positions.T[::-1])
    ordered = positions[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    group = np.cumsum(starts) - 1
    inverse = np.empty(len(order), np.int64)
    inverse[order] = group
    return ordered[starts], inverse[faces]


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


def vertex_tangents(
    positions: np.ndarray, faces: np.ndarray, normals: np.ndarray, uvs: np.ndarray
) -> np.ndarray:
    """Per-vertex tangents for normal mapping, as glTF's TANGENT attribute wants them.

    The tangent follows increasing u on the surface, is made orthogonal to the normal, and
    its w component (+1 or -1) gives the handedness of the bitangent (cross(n, t) * w points
    along increasing v in glTF's top-left UV convention).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        normals: (n, 3) float unit normals.
        uvs: (n, 2) float.

    Returns:
        (n, 4) float32: unit xyz tangent and w in {-1, +1}.
    """
    p = positions[faces].astype(np.float64)
    t = uvs[faces].astype(np.float64)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    inverse = np.where(np.abs(det) > 1e-20, 1.0 / np.where(det == 0, 1.0, det), 0.0)[:, None]
    face_tangent = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inverse
    face_bitangent = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inverse
    tangent = _sum_at_corners(faces, face_tangent, len(positions))
    bitangent = _sum_at_corners(faces, face_bitangent, len(positions))
    normals = np.asarray(normals, np.float64)
    tangent -= normals * (tangent * normals).sum(axis=1, keepdims=True)
    # Where UVs give no direction, any unit vector orthogonal to the normal will do.
    helper = np.where(np.abs(normals[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    fallback = np.cross(normals, helper)
    weak = np.linalg.norm(tangent, axis=1) < 1e-12
    tangent[weak] = fallback[weak]
    unit = unit_vectors(tangent, fallback=(1.0, 0.0, 0.0))
    handedness = np.where((np.cross(normals, unit) * bitangent).sum(axis=1) < 0.0, -1.0, 1.0)
    return np.concatenate([unit, handedness[:, None].astype(np.float32)], axis=1)


def signed_volume(positions: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed mesh; positive when its faces wind outward."""
    corners = positions[faces].astype(np.float64)
    return float(
        np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6.0
    )


def orient_outward(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces of a closed, consistently wound mesh, reversed if needed so they face outward.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int, consistently wound.

    Returns:
        (m, 3) faces with positive signed volume.
    """
    return np.ascontiguousarray(faces[:, ::-1]) if signed_volume(positions, faces) < 0 else faces


def check_mesh(positions: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``positions`` (n, 3) and ``faces`` (m, 3) int64 indexing them.

    Raises:
        InputError: wrong shapes, non-integer faces, or indices outside the vertices.
    """
    positions = np.asarray(positions)
    faces = np.asarray(faces)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {positions.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(
            f"faces must be an (m, 3) integer array, got shape {faces.shape} dtype {faces.dtype}"
        )
    if len(faces) and (faces.min() < 0 or faces.max() >= len(positions)):
        raise InputError(
            f"faces must index vertices in [0, {len(positions)}), got [{faces.min()}, {faces.max()}]"
        )
    return positions, faces.astype(np.int64)


def bounding_diagonal(positions: np.ndarray) -> float:
    """Length of the bounding-box diagonal of (n, 3) points (0 for none)."""
    if len(positions) == 0:
        return 0.0
    return float(np.linalg.norm(positions.max(axis=0) - positions.min(axis=0)))
