"""Distances between two meshes: Chamfer, F-score, normal consistency, Hausdorff.

Both surfaces are sampled uniformly by area (stratified, seeded). ``d(a, B)``, the distance
from a sample of A to surface B, is the exact point-to-triangle distance to the nearest of
the faces that carry B's ``candidates`` nearest samples (found with a
``scipy.spatial.cKDTree``): an upper bound of the true distance that is exact whenever the
closest face of B carries one of those samples, and free of the sampling-spacing floor of
sample-to-sample distances. Definitions:

- ``chamfer``: ``(mean_a d(a, B) + mean_b d(b, A)) / 2`` (the L1 Chamfer distance).
- ``precision``: fraction of A's samples within ``threshold`` of B; ``recall`` the same from
  B to A; ``f_score`` their harmonic mean. A is the mesh under test, B the reference.
- ``normal_consistency``: mean over both directions of ``|n_a . n_b|`` for matched samples
  (face normals; 1 is perfect, unsigned so that winding does not matter).
- ``hausdorff``: ``max(max_a d(a, B), max_b d(b, A))``.

Distances are in the meshes' units; divide by ``diagonal`` (of B's bounding box) for
figures independent of scale. The matched normal is that of the closest face found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.mesh_ops import face_normals
from genesis3d.geometry.sampling import stratified_faces


@dataclass(frozen=True)
class MeshComparison:
    """What :func:`compare_meshes` measured (see the module docstring)."""

    chamfer: float
    hausdorff: float
    f_score: float
    precision: float
    recall: float
    threshold: float
    normal_consistency: float
    diagonal: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-serialisable dict."""
        return asdict(self)


def sample_surface(
    positions: np.ndarray,
    faces: np.ndarray,
    count: int,
    rng: np.random.Generator,
    *,
    return_faces: bool = False,
):
    """Points spread uniformly by area over a triangle mesh, with their face normals.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        count: number of points.
        rng: source of the random draws.

    Returns:
        (points (count, 3) float64, unit normals (count, 3) float64), and the (count,)
        int64 face of each point when ``return_faces``.
    """
    normals = face_normals(positions, faces)
    doubled = np.linalg.norm(normals, axis=1)
    if len(faces) == 0 or doubled.sum() <= 0.0:
        raise InputError(
            f"a mesh to compare needs faces of non-zero area, got {len(faces)} faces of total "
            f"area {0.5 * doubled.sum():.3g}; pass a surface mesh"
        )
    picked = stratified_faces(doubled, count, rng)
    weights = rng.random((count, 2))
    outside = weights.sum(axis=1) > 1.0
    weights[outside] = 1.0 - weights[outside]
    corners = positions[faces[picked]].astype(np.float64)
    points = (
        corners[:, 0]
        + weights[:, :1] * (corners[:, 1] - corners[:, 0])
        + weights[:, 1:] * (corners[:, 2] - corners[:, 0])
    )
    unit = normals[picked] / np.maximum(doubled[picked], 1e-300)[:, None]
    return (points, unit, picked) if return_faces else (points, unit)


def closest_point_on_triangles(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Closest point of each triangle to each point (Ericson's region test, vectorised).

    Args:
        points: (k, 3) float64.
        corners: (k, 3, 3) float64 triangle corners, one triangle per point.

    Returns:
        (k, 3) float64 closest points.
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    ab, ac, ap = b - a, c - a, points - a

    def dot(x, y):
        return np.einsum("ij,ij->i", x, y)

    d1, d2 = dot(ab, ap), dot(ac, ap)
    bp = points - b
    d3, d4 = dot(ab, bp), dot(ac, bp)
    cp = points - c
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denominator = va + vb + vc
    safe = np.where(np.abs(denominator) > 1e-300, denominator, 1.0)
    # The closest point is a + v * ab + w * ac; each region sets (v, w), later regions
    # win as in the sequential test. Working on the two weights, not on (k, 3) points,
    # keeps the temporaries a third of the size.
    v, w = vb / safe, vc / safe  # inside the face
    with np.errstate(divide="ignore", invalid="ignore"):
        edge_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        t = (d4 - d3) / np.where(edge_bc, (d4 - d3) + (d5 - d6), 1.0)
        v, w = np.where(edge_bc, 1.0 - t, v), np.where(edge_bc, t, w)
        edge_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t = d2 / np.where(edge_ac, d2 - d6, 1.0)
        v, w = np.where(edge_ac, 0.0, v), np.where(edge_ac, t, w)
        edge_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t = d1 / np.where(edge_ab, d1 - d3, 1.0)
        v, w = np.where(edge_ab, t, v), np.where(edge_ab, 0.0, w)
    corner_c = (d6 >= 0) & (d5 <= d6)
    v, w = np.where(corner_c, 0.0, v), np.where(corner_c, 1.0, w)
    corner_b = (d3 >= 0) & (d4 <= d3)
    v, w = np.where(corner_b, 1.0, v), np.where(corner_b, 0.0, w)
    corner_a = (d1 <= 0) & (d2 <= 0)
    v, w = np.where(corner_a, 0.0, v), np.where(corner_a, 0.0, w)
    return a + v[:, None] * ab + w[:, None] * ac


def _surface_distance(
    points: np.ndarray,
    positions: np.ndarray,
    faces: np.ndarray,
    samples: np.ndarray,
    sample_faces: np.ndarray,
    candidates: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to the surface and the unit normal of the face reached."""
    from scipy.spatial import cKDTree

    k = max(1, min(candidates, len(samples)))
    _, nearest = cKDTree(samples).query(points, k=k)
    nearest = nearest.reshape(len(points), k)
    best = np.full(len(points), np.inf)
    best_face = np.zeros(len(points), np.int64)
    for column in range(k):
        face = sample_faces[nearest[:, column]]
        closest = closest_point_on_triangles(points, positions[faces[face]].astype(np.float64))
        distance = np.linalg.norm(points - closest, axis=1)
        better = distance < best
        best[better] = distance[better]
        best_face[better] = face[better]
    normals = face_normals(positions, faces[best_face])
    normals /= np.maximum(np.linalg.norm(normals, axis=1), 1e-300)[:, None]
    return best, normals


def compare_meshes(
    positions: np.ndarray,
    faces: np.ndarray,
    reference_positions: np.ndarray,
    reference_faces: np.ndarray,
    *,
    samples: int = 100_000,
    threshold: float = 0.01,
    seed: int = 0,
    candidates: int = 8,
) -> MeshComparison:
    """Chamfer, F-score, normal consistency and Hausdorff of a mesh against a reference.

    Args:
        positions: (n, 3) float vertices of the mesh under test.
        faces: (m, 3) int.
        reference_positions: (n', 3) float vertices of the reference mesh.
        reference_faces: (m', 3) int.
        samples: points drawn on each surface.
        threshold: F-score distance as a fraction of the reference's bounding-box
            diagonal (0.01 = 1 %).
        seed: seeds the sampling, so the same inputs give the same figures.
        candidates: nearest samples of the other surface whose faces are tested exactly.

    Returns:
        The :class:`MeshComparison`; ``threshold`` in it is absolute (mesh units).
    """
    if samples < 1:
        raise ConfigError(f"samples must be at least 1, got {samples}; e.g. samples=100000")
    if not 0.0 < threshold < 1.0:
        raise ConfigError(
            f"threshold is a fraction of the diagonal in (0, 1), got {threshold}; e.g. 0.01"
        )
    reference_positions = np.asarray(reference_positions)
    diagonal = float(
        np.linalg.norm(reference_positions.max(axis=0) - reference_positions.min(axis=0))
    )
    rng = np.random.default_rng(seed)
    points, normals, mesh_faces = sample_surface(
        np.asarray(positions), np.asarray(faces), samples, rng, return_faces=True
    )
    ref_points, ref_normals, ref_faces = sample_surface(
        reference_positions, np.asarray(reference_faces), samples, rng, return_faces=True
    )
    to_reference, normal_reference = _surface_distance(
        points, reference_positions, np.asarray(reference_faces), ref_points, ref_faces, candidates
    )
    to_mesh, normal_mesh = _surface_distance(
        ref_points, np.asarray(positions), np.asarray(faces), points, mesh_faces, candidates
    )
    absolute = threshold * diagonal
    precision = float((to_reference <= absolute).mean())
    recall = float((to_mesh <= absolute).mean())
    f_score = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    consistency = 0.5 * (
        np.abs((normals * normal_reference).sum(axis=1)).mean()
        + np.abs((ref_normals * normal_mesh).sum(axis=1)).mean()
    )
    return MeshComparison(
        chamfer=float(0.5 * (to_reference.mean() + to_mesh.mean())),
        hausdorff=float(max(to_reference.max(), to_mesh.max())),
        f_score=float(f_score),
        precision=precision,
        recall=recall,
        threshold=absolute,
        normal_consistency=float(consistency),
        diagonal=diagonal,
        samples=samples,
    )
