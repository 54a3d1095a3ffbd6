"""Consistent face winding: one solve over all pieces, then outward for closed ones.

Used by :func:`genesis3d.geometry.clean.clean_mesh`, which shares its edge table with this
stage; :func:`orient_faces` is the stand-alone entry point.
"""

from __future__ import annotations

import numpy as np

from genesis3d.geometry.measure import _edge_table
from genesis3d.geometry.mesh_ops import check_mesh, face_normals
from genesis3d.geometry.weld import connected_labels

__all__ = ["orient_faces"]


def _consistent(faces: np.ndarray, edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flip (m,) bool, non-orientable (m,) bool, piece (m,) int64) for consistent winding."""
    m = len(faces)
    manifold = np.flatnonzero(edges.counts == 2)
    slot_a, slot_b = edges.order[edges.first[manifold]], edges.order[edges.first[manifold] + 1]
    face_a, face_b = slot_a % m, slot_b % m
    # Slot s = corner * m + face runs from faces[face, corner] to the next corner.
    start = faces.T.reshape(-1)
    forward = start < np.roll(faces, -1, axis=1).T.reshape(-1)
    agree = forward[slot_a] != forward[slot_b]  # opposite directions: already consistent
    # Node f is face f as is, node f + m face f reversed.
    labels = connected_labels(
        np.concatenate([face_a, face_a + m]),
        np.concatenate([np.where(agree, face_b, face_b + m), np.where(agree, face_b + m, face_b)]),
        2 * m,
    )
    own, other = labels[:m], labels[m:]
    non_orientable = own == other
    kept = np.bincount(own, minlength=labels.max() + 1)
    flip = (kept[own] < kept[other]) | ((kept[own] == kept[other]) & (own > other))
    return flip & ~non_orientable, non_orientable, np.minimum(own, other).astype(np.int64)


def _inward_pieces(
    positions: np.ndarray, faces: np.ndarray, piece: np.ndarray, open_piece: np.ndarray
) -> np.ndarray:
    """(pieces,) bool: closed pieces whose faces enclose negative volume."""
    # a . (b x c) = a . ((b - a) x (c - a)): one corner and the face normal.
    first = positions[faces[:, 0]].astype(np.float64)
    volume = np.einsum("ij,ij->i", first, face_normals(positions, faces))
    return ~open_piece & (np.bincount(piece, weights=volume, minlength=len(open_piece)) < 0.0)


def orient_faces(
    positions: np.ndarray, faces: np.ndarray, *, outward: bool = True
) -> tuple[np.ndarray, int, int]:
    """Make winding consistent across each orientable piece, then outward where closed.

    Faces sharing a manifold edge (one used by exactly two faces) must use it in opposite
    directions. Each face has two states (kept, flipped); linking the states that agree
    across every manifold edge and taking connected components of that doubled graph
    solves all pieces at once: a piece whose two states end up connected is not
    orientable (a Moebius band) and is left as it is. Of the two valid windings of a
    piece, the one flipping fewer faces is taken. Then, if ``outward``, each piece with no
    boundary or non-manifold edge is reversed when its signed volume is negative (so an
    inner cavity's shell also faces outward).

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        outward: turn closed pieces to enclose positive volume.

    Returns:
        (faces (m, 3) int64, faces flipped, faces in non-orientable pieces).
    """
    positions, faces = check_mesh(positions, faces)
    m = len(faces)
    if m == 0:
        return faces, 0, 0
    edges = _edge_table(faces, len(positions))
    flip, non_orientable, piece = _consistent(faces, edges)
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    if outward:
        open_slot = edges.counts[edges.inverse] != 2
        open_piece = np.bincount(piece[np.arange(3 * m) % m], weights=open_slot) > 0
        reverse = _inward_pieces(positions, faces, piece, open_piece)[piece] & ~non_orientable
        faces[reverse] = faces[reverse][:, ::-1]
        flip ^= reverse
    return faces, int(flip.sum()), int(non_orientable.sum())
