"""Health figures of meshes and statistics of splats, vectorised for millions of faces.

Topology is judged after welding vertices with bit-identical positions, so UV seams
(vertices duplicated with different UVs, as glTF requires) do not count as holes.

Aspect ratio of a triangle: longest edge divided by the shortest altitude,
L^2 / (2 A); 1.155 for an equilateral triangle. A face is a sliver above 10, a bad sliver
above 100, and degenerate when it repeats a vertex or its area is at most 1e-12 times the
squared bounding-box diagonal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genesis3d.geometry.mesh_ops import face_normals, weld_exact


@dataclass(frozen=True)
class MeshHealth:
    """What :func:`mesh_health` found."""

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

    def to_dict(self) -> dict:
        return asdict(self)


def _edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (3m, 2) of the faces, in face order."""
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _vertex_manifold_failures(faces: np.ndarray, vertex_count: int) -> int:
    """Vertices whose incident faces form more than one fan (a pinch, a bow-tie)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0:
        return 0
    # Node (v, a) means "neighbour a in the link of v"; each face joins its two other corners in v's link.
    centre = faces.reshape(-1)
    first = np.roll(faces, -1, axis=1).reshape(-1)
    second = np.roll(faces, -2, axis=1).reshape(-1)
    keys = np.concatenate([centre * vertex_count + first, centre * vertex_count + second])
    nodes, index = np.unique(keys, return_inverse=True)
    half = len(centre)
    graph = coo_matrix(
        (np.ones(half), (index[:half], index[half:])), shape=(len(nodes), len(nodes))
    )
    _, labels = connected_components(graph, directed=False)
    owner = nodes // vertex_count
    fans = np.unique(np.stack([owner, labels], axis=1), axis=0)[:, 0]
    return int((np.bincount(fans) > 1).sum())


def _components(faces: np.ndarray, vertex_count: int) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0:
        return 0
    edges = _edges(faces)
    graph = coo_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(vertex_count, vertex_count)
    )
    _, labels = connected_components(graph, directed=False)
    return int(len(np.unique(labels[np.unique(faces)])))


def uv_coverage(uvs: np.ndarray, faces: np.ndarray, resolution: int = 512) -> float:
    """Fraction of the unit UV square covered by at least one UV triangle.

    Args:
        uvs: (n, 2) float.
        faces: (m, 3) int.
        resolution: side of the raster the triangles are drawn on.
    """
    from PIL import Image, ImageDraw

    canvas = Image.new("1", (resolution, resolution), 0)
    draw = ImageDraw.Draw(canvas)
    corners = uvs[faces] * resolution
    for triangle in corners.reshape(-1, 6).tolist():
        draw.polygon(triangle, fill=1)
    return float(np.asarray(canvas).mean())


def mesh_health(
    positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None = None
) -> MeshHealth:
    """Measure a triangle mesh.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int.
        uvs: (n, 2) float texture coordinates, or None.

    Returns:
        The :class:`MeshHealth`.
    """
    positions = np.asarray(positions, np.float64)
    faces = np.asarray(faces, np.int64)
    welded, wfaces = weld_exact(positions, faces) if len(positions) else (positions, faces)
    bounds = (
        [positions.min(axis=0).tolist(), positions.max(axis=0).tolist()]
        if len(positions)
        else [[0.0] * 3, [0.0] * 3]
    )
    diagonal2 = float(np.sum((np.asarray(bounds[1]) - np.asarray(bounds[0])) ** 2))

    cross = face_normals(welded, wfaces) if len(wfaces) else np.zeros((0, 3))
    areas = 0.5 * np.linalg.norm(cross, axis=1)
    repeated = (
        (wfaces[:, 0] == wfaces[:, 1])
        | (wfaces[:, 1] == wfaces[:, 2])
        | (wfaces[:, 0] == wfaces[:, 2])
    )
    degenerate = repeated | (areas <= 1e-12 * max(diagonal2, 1e-30))
    duplicate = len(wfaces) - len(np.unique(np.sort(wfaces, axis=1), axis=0))

    corners = welded[wfaces]
    lengths = np.linalg.norm(corners - np.roll(corners, -1, axis=1), axis=2)
    longest = lengths.max(axis=1) if len(wfaces) else np.zeros(0)
    aspect = np.where(degenerate, 0.0, longest**2 / np.maximum(2.0 * areas, 1e-300))

    good = wfaces[~repeated]
    directed = _edges(good)
    undirected = np.sort(directed, axis=1)
    _, edge_counts = np.unique(undirected, axis=0, return_counts=True)
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    boundary = int((edge_counts == 1).sum())
    non_manifold = int((edge_counts > 2).sum())
    used = np.unique(good)
    non_manifold_vertices = _vertex_manifold_failures(good, len(welded))
    components = _components(good, len(welded))
    euler = int(len(used) - len(edge_counts) + len(good))
    watertight = len(good) > 0 and boundary == 0 and non_manifold == 0
    oriented = bool((directed_counts == 1).all())
    closed_manifold = watertight and non_manifold_vertices == 0
    genus = (2 * components - euler) // 2 if closed_manifold else None
    volume = None
    if watertight:
        volume = float(
            np.einsum(
                "ij,ij->i",
                corners[~repeated, 0],
                np.cross(corners[~repeated, 1], corners[~repeated, 2]),
            ).sum()
            / 6.0
        )

    uv_out = uv_cov = None
    if uvs is not None:
        uvs = np.asarray(uvs, np.float64)
        uv_out = int(((uvs < 0.0) | (uvs > 1.0)).any(axis=1).sum())
        uv_cov = uv_coverage(uvs, faces)
    return MeshHealth(
        vertices=len(positions),
        faces=len(faces),
        welded_vertices=len(welded),
        bounds=bounds,
        watertight=bool(watertight),
        edge_manifold=non_manifold == 0,
        vertex_manifold=non_manifold_vertices == 0,
        consistently_oriented=oriented,
        boundary_edges=boundary,
        non_manifold_edges=non_manifold,
        non_manifold_vertices=non_manifold_vertices,
        degenerate_faces=int(degenerate.sum()),
        duplicate_faces=int(duplicate),
        sliver_faces_10=int((aspect > 10).sum()),
        sliver_faces_100=int((aspect > 100).sum()),
        components=components,
        euler_characteristic=euler,
        genus=genus,
        area=float(areas.sum()),
        volume=volume,
        uv_out_of_range=uv_out,
        uv_coverage=uv_cov,
    )


def splat_stats(splats) -> dict:
    """Count, bounds, scale and opacity statistics of a :class:`genesis3d.assets.SplatAsset`."""
    scales = splats.scales.max(axis=1) if splats.n_splats else np.zeros(1)
    opacities = splats.opacities if splats.n_splats else np.zeros(1)
    return {
        "count": int(splats.n_splats),
        "sh_degree": int(splats.sh_degree),
        "bounds": splats.bounds().tolist(),
        "scale_min": float(scales.min()),
        "scale_median": float(np.median(scales)),
        "scale_max": float(scales.max()),
        "opacity_min": float(opacities.min()),
        "opacity_mean": float(opacities.mean()),
        "opacity_max": float(opacities.max()),
    }
