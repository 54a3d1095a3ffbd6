"""Health figures of meshes and statistics of splats, vectorised for millions of faces.

Topology is judged after welding vertices with equal positions, so UV seams (vertices
duplicated with different UVs, as glTF requires) do not count as holes.

Definitions used throughout:

- watertight: every edge is shared by exactly two faces (no boundary, no non-manifold edge).
- vertex manifold: the faces around each vertex form one fan (a disk, or a half-disk at a
  boundary); a pinch where two cones touch at a vertex (a bow-tie) fails.
- consistently oriented: no edge is used twice in the same direction.
- aspect ratio of a triangle: longest edge divided by its shortest altitude,
  ``L^2 / (2 A)``; 1.155 for an equilateral triangle. A face is a sliver above 10, a bad
  sliver above 100, and degenerate when it repeats a vertex or its area is at most 1e-12
  times the squared bounding-box diagonal.
- genus (closed manifold meshes only): ``(2 C - chi) / 2`` with C components and Euler
  characteristic ``chi = V - E + F``.
- UV coverage: the fraction of the unit square's texel centres (on a 512 x 512 raster)
  inside at least one UV triangle; UV overlap: the fraction of covered centres inside two
  or more (shared edges are counted once by a half-open fill rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genesis3d.geometry.compiled import grouped_order
from genesis3d.geometry.mesh_ops import face_normals, weld_exact


@dataclass(frozen=True)
class MeshHealth:
    """What :func:`mesh_health` found (see the module docstring for the definitions).

    Attributes:
        vertices: vertex count as given (UV seams split vertices).
        faces: face count.
        welded_vertices: vertices after merging equal positions.
        bounds: [[min x, y, z], [max x, y, z]].
        watertight, edge_manifold, vertex_manifold, consistently_oriented: topology checks.
        boundary_edges: edges used by one face.
        non_manifold_edges: edges used by three or more faces.
        non_manifold_vertices: vertices whose faces form more than one fan.
        degenerate_faces: faces repeating a vertex or of (near) zero area.
        duplicate_faces: faces using the same three vertices as an earlier face.
        sliver_faces_10, sliver_faces_100: faces of aspect ratio above 10 and above 100.
        components: edge-connected pieces.
        euler_characteristic: V - E + F of the welded mesh.
        genus: handles per component summed, for closed manifold meshes; else None.
        area: surface area.
        volume: signed enclosed volume (positive when wound outward) when watertight; else None.
        uv_out_of_range: vertices with a UV outside [0, 1]; None without UVs.
        uv_coverage: fraction of the UV square covered; None without UVs.
        uv_overlap: fraction of the covered UV area covered twice or more; None without UVs.
    """

    vertices: int
    faces: int
    welded_vertices: int
    bounds: list[list[float]]
    watertight: bool
    edge_manifold: bool
    vertex_manifold: bool
    consistently_oriented: bool
    boundary_edges: int
    non_manifold_edges: int
    non_manifold_vertices: int
    degenerate_faces: int
    duplicate_faces: int
    sliver_faces_10: int
    sliver_faces_100: int
    components: int
    euler_characteristic: int
    genus: int | None
    area: float
    volume: float | None
    uv_out_of_range: int | None
    uv_coverage: float | None
    uv_overlap: float | None

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class _EdgeTable:
    """Undirected edges of a face list: each face corner's edge and per-edge use counts."""

    keys: np.ndarray  # (E,) int64 sorted keys low * n + high
    inverse: np.ndarray  # (3m,) int64 edge of each directed face edge, face-edge-major
    counts: np.ndarray  # (E,) int64 faces using each edge
    forward: np.ndarray  # (E,) int64 uses going from the lower to the higher vertex index
    order: np.ndarray  # (3m,) int64 face-edge slots sorted by edge (stable)
    first: np.ndarray  # (E,) int64 position in ``order`` of each edge's first slot


def _edge_table(faces: np.ndarray, vertex_count: int) -> _EdgeTable:
    """Edges of ``faces`` ((m, 3) int64): edge k of face f is (f[k], f[(k + 1) % 3])."""
    start = faces.T.reshape(-1)  # edge-major: all edges 0, then 1, then 2
    end = np.roll(faces, -1, axis=1).T.reshape(-1)
    low, high = np.minimum(start, end), np.maximum(start, end)
    slot_keys = low * np.int64(vertex_count) + high
    # One stable sort gives the unique keys, the inverse and the slots of each edge.
    kernel = grouped_order() if len(slot_keys) > 4096 else None
    if kernel is not None:
        order = kernel(low, high, int(vertex_count))
    else:
        order = np.argsort(slot_keys, kind="stable")
    ordered = slot_keys[order]
    new = np.ones(len(order), bool)
    new[1:] = ordered[1:] != ordered[:-1]
    first = np.flatnonzero(new)
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.cumsum(new) - 1
    counts = np.diff(np.append(first, len(order)))
    forward = np.bincount(inverse, weights=(start < end), minlength=len(first)).astype(np.int64)
    return _EdgeTable(ordered[first], inverse, counts, forward, order, first)


def _fans_per_vertex(faces: np.ndarray, edges: _EdgeTable, vertex_count: int) -> np.ndarray:
    """Number of face fans around each vertex: (n,) int64 (1 for a manifold vertex in use)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    # A node is (centre vertex, neighbour): one per end of each edge, id 2 * edge + (centre is
    # the higher index). Each face joins, at each corner, the nodes of its two edges there;
    # the components of that graph are the fans of each vertex.
    m = len(faces)
    edge = edges.inverse.reshape(3, m)  # edge k of face f joins corners k and k + 1
    nodes = []
    for corner in range(3):
        centre = faces[:, corner]
        after, before = edge[corner], edge[(corner - 1) % 3]
        other_after, other_before = faces[:, (corner + 1) % 3], faces[:, (corner - 1) % 3]
        nodes.append((2 * after + (centre > other_after), 2 * before + (centre > other_before)))
    rows = np.concatenate([pair[0] for pair in nodes])
    cols = np.concatenate([pair[1] for pair in nodes])
    count = 2 * len(edges.keys)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(count, count))
    n_labels, labels = connected_components(graph, directed=False)
    low, high = np.divmod(edges.keys, np.int64(vertex_count))
    owner = np.stack([low, high], axis=1).reshape(-1)  # node 2e -> low end, 2e + 1 -> high
    label_owner = np.zeros(n_labels, np.int64)
    label_owner[labels] = owner
    return np.bincount(label_owner, minlength=vertex_count)


def _component_count(edges: _EdgeTable, used: np.ndarray, vertex_count: int) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(used) == 0:
        return 0
    low, high = np.divmod(edges.keys, np.int64(vertex_count))
    graph = coo_matrix(
        (np.ones(len(low), np.int8), (low, high)), shape=(vertex_count, vertex_count)
    )
    _, labels = connected_components(graph, directed=False)
    return int(len(np.unique(labels[used])))


def _duplicate_faces(faces: np.ndarray) -> int:
    if len(faces) < 2:
        return 0
    ordered = np.sort(faces, axis=1)
    order = np.lexsort(ordered.T[::-1])
    ordered = ordered[order]
    return int((ordered[1:] == ordered[:-1]).all(axis=1).sum())


def uv_raster(uvs: np.ndarray, faces: np.ndarray, resolution: int = 512) -> np.ndarray:
    """How many UV triangles cover each texel centre of a square raster.

    Centres exactly on an edge shared by two triangles are counted once (a half-open fill
    rule), so a seamless chart reads as covered once.

    Args:
        uvs: (n, 2) float texture coordinates.
        faces: (m, 3) int.
        resolution: raster side in texels.

    Returns:
        (resolution, resolution) int32 counts, row = v, column = u.
    """
    corners = np.asarray(uvs, np.float64)[np.asarray(faces, np.int64)] * resolution - 0.5
    # Orient every UV triangle the same way so shared edges run in opposite directions.
    doubled = _cross2(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    flip = doubled < 0
    corners[flip] = corners[flip][:, ::-1]
    corners = corners[doubled != 0]
    counts = np.zeros(resolution * resolution, np.int64)
    low = np.clip(np.ceil(corners.min(axis=1)), 0, resolution)
    high = np.clip(np.floor(corners.max(axis=1)), -1, resolution - 1)
    extent = high - low + 1
    keep = extent.min(axis=1) >= 1
    corners, low, spans = corners[keep], low[keep].astype(np.int64), extent[keep].max(axis=1)
    # Bucket triangles by the power-of-two size of their texel box, so each bucket tests a
    # small fixed grid of candidate centres per triangle.
    bucket = np.ceil(np.log2(np.maximum(spans, 1))).astype(np.int64)
    for level in np.unique(bucket):
        side = 1 << int(level)
        members = np.flatnonzero(bucket == level)
        chunk = max(1, 4_000_000 // (side * side))
        for begin in range(0, len(members), chunk):
            picked = members[begin : begin + chunk]
            counts += _rasterise_bucket(corners[picked], low[picked], side, resolution)
    return counts.reshape(resolution, resolution).astype(np.int32)


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _rasterise_bucket(
    corners: np.ndarray, low: np.ndarray, side: int, resolution: int
) -> np.ndarray:
    """Counts of texel centres inside triangles (k, 3, 2) whose texel boxes start at ``low``."""
    offsets = np.arange(side)
    x = low[:, 0, None, None] + offsets[None, None, :]  # (k, 1, side)
    y = low[:, 1, None, None] + offsets[None, :, None]  # (k, side, 1)
    inside = (x < resolution) & (y < resolution)
    for k in range(3):
        a, b = corners[:, k], corners[:, (k + 1) % 3]
        edge = b - a
        value = (edge[:, 0, None, None] * (y - a[:, 1, None, None])) - (
            edge[:, 1, None, None] * (x - a[:, 0, None, None])
        )
        # Half-open rule: a centre on an edge belongs to one side only, decided by the edge's
        # direction, which is reversed in the neighbouring triangle.
        owns = (edge[:, 1] < 0) | ((edge[:, 1] == 0) & (edge[:, 0] > 0))
        inside &= (value > 0) | ((value == 0) & owns[:, None, None])
    flat = np.broadcast_to(y * resolution + x, inside.shape)[inside]
    return np.bincount(flat, minlength=resolution * resolution)


def mesh_health(
    positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None = None
) -> MeshHealth:
    """Measure a triangle mesh's topology, quality and UVs.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices.
        uvs: (n, 2) float texture coordinates, or None.

    Returns:
        The :class:`MeshHealth`.
    """
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    welded, wfaces = weld_exact(positions, faces)
    if len(positions):
        bounds = [positions.min(axis=0).tolist(), positions.max(axis=0).tolist()]
    else:
        bounds = [[0.0] * 3, [0.0] * 3]
    diagonal2 = float(np.sum((np.asarray(bounds[1]) - np.asarray(bounds[0])) ** 2))

    areas = 0.5 * np.linalg.norm(face_normals(welded, wfaces), axis=1)
    repeated = (
        (wfaces[:, 0] == wfaces[:, 1])
        | (wfaces[:, 1] == wfaces[:, 2])
        | (wfaces[:, 0] == wfaces[:, 2])
    )
    degenerate = repeated | (areas <= 1e-12 * max(diagonal2, 1e-30))
    corners = welded[wfaces]
    lengths2 = np.sum((corners - np.roll(corners, -1, axis=1)) ** 2, axis=2)
    longest2 = lengths2.max(axis=1) if len(wfaces) else np.zeros(0)
    aspect = np.where(degenerate, 0.0, longest2 / np.maximum(2.0 * areas, 1e-300))

    good = wfaces[~repeated]
    count = len(welded)
    edges = _edge_table(good, count)
    boundary = int((edges.counts == 1).sum())
    non_manifold = int((edges.counts > 2).sum())
    oriented = bool(((edges.forward <= 1) & (edges.counts - edges.forward <= 1)).all())
    used = np.unique(good)
    fans = _fans_per_vertex(good, edges, count) if len(good) else np.zeros(count, np.int64)
    non_manifold_vertices = int((fans > 1).sum())
    components = _component_count(edges, used, count)
    euler = int(len(used) - len(edges.keys) + len(good))
    watertight = len(good) > 0 and boundary == 0 and non_manifold == 0
    genus = None
    if watertight and non_manifold_vertices == 0:
        genus = (2 * components - euler) // 2
    volume = None
    if watertight:
        kept = corners[~repeated]
        volume = float(np.einsum("ij,ij->i", kept[:, 0], np.cross(kept[:, 1], kept[:, 2])).sum())
        volume /= 6.0

    uv_out = uv_cov = uv_over = None
    if uvs is not None:
        uvs = np.asarray(uvs, np.float64).reshape(-1, 2)
        uv_out = int(((uvs < 0.0) | (uvs > 1.0)).any(axis=1).sum())
        raster = uv_raster(uvs, faces)
        covered = int((raster > 0).sum())
        uv_cov = covered / raster.size
        uv_over = int((raster > 1).sum()) / covered if covered else 0.0
    return MeshHealth(
        vertices=len(positions),
        faces=len(faces),
        welded_vertices=count,
        bounds=bounds,
        watertight=bool(watertight),
        edge_manifold=non_manifold == 0,
        vertex_manifold=non_manifold_vertices == 0,
        consistently_oriented=oriented,
        boundary_edges=boundary,
        non_manifold_edges=non_manifold,
        non_manifold_vertices=non_manifold_vertices,
        degenerate_faces=int(degenerate.sum()),
        duplicate_faces=_duplicate_faces(good),
        sliver_faces_10=int((aspect > 10).sum()),
        sliver_faces_100=int((aspect > 100).sum()),
        components=components,
        euler_characteristic=euler,
        genus=genus,
        area=float(areas.sum()),
        volume=volume,
        uv_out_of_range=uv_out,
        uv_coverage=uv_cov,
        uv_overlap=uv_over,
    )


def splat_stats(splats: Any) -> dict[str, Any]:
    """Count, bounds, scale and opacity statistics of splats.

    Args:
        splats: a :class:`genesis3d.assets.SplatAsset`, or a mapping with its fields
            ``means`` (n, 3), ``scales`` (n, 3), ``opacities`` (n,) and optionally
            ``sh_rest`` (n, k, 3).

    Returns:
        A JSON-serialisable dict: count, sh_degree, bounds, scale_min/median/max (of each
        splat's largest axis, metres), opacity_min/mean/max.
    """
    fields = splats if isinstance(splats, Mapping) else vars(splats)
    means = np.asarray(fields["means"], np.float64).reshape(-1, 3)
    count = len(means)
    sh_rest = fields.get("sh_rest")
    sh_degree = 0 if sh_rest is None else {3: 1, 8: 2, 15: 3}[np.shape(sh_rest)[1]]
    if count == 0:
        return {"count": 0, "sh_degree": sh_degree, "bounds": [[0.0] * 3, [0.0] * 3]}
    scales = np.asarray(fields["scales"], np.float64).reshape(-1, 3).max(axis=1)
    opacities = np.asarray(fields["opacities"], np.float64).reshape(-1)
    return {
        "count": count,
        "sh_degree": sh_degree,
        "bounds": [means.min(axis=0).tolist(), means.max(axis=0).tolist()],
        "scale_min": float(scales.min()),
        "scale_median": float(np.median(scales)),
        "scale_max": float(scales.max()),
        "opacity_min": float(opacities.min()),
        "opacity_mean": float(opacities.mean()),
        "opacity_max": float(opacities.max()),
    }
