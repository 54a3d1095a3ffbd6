"""Mesh health and splat statistics on meshes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.assets import SplatAsset
from genesis3d.geometry.measure import mesh_health, splat_stats, uv_raster
from genesis3d.geometry.mesh_ops import split_by_face_group, vertex_normals, weld_exact


def cube(size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned cube centred on the origin, 8 vertices, 12 outward faces."""
    corners = np.array(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64
    ) * (size / 2)
    quads = [  # counter-clockwise seen from outside
        (0, 1, 3, 2),  # -x
        (4, 6, 7, 5),  # +x
        (0, 4, 5, 1),  # -y
        (2, 3, 7, 6),  # +y
        (0, 2, 6, 4),  # -z
        (1, 5, 7, 3),  # +z
    ]
    faces = [(a, b, c) for a, b, c, _ in quads] + [(a, c, d) for a, _, c, d in quads]
    return corners, np.array(faces, np.int64)


def torus(rings: int = 12, sides: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A closed torus of quads split in two: genus 1."""
    u, v = np.meshgrid(np.arange(rings), np.arange(sides), indexing="ij")
    theta, phi = 2 * np.pi * u / rings, 2 * np.pi * v / sides
    radius = 2.0 + 0.5 * np.cos(phi)
    points = np.stack([radius * np.cos(theta), radius * np.sin(theta), 0.5 * np.sin(phi)], -1)
    index = u * sides + v
    right, up = np.roll(index, -1, axis=0), np.roll(index, -1, axis=1)
    diagonal = np.roll(right, -1, axis=1)
    faces = np.concatenate(
        [np.stack([index, right, diagonal], -1), np.stack([index, diagonal, up], -1)]
    ).reshape(-1, 3)
    return points.reshape(-1, 3), faces


def test_cube_is_a_closed_genus_zero_solid_of_known_volume_and_area():
    positions, faces = cube(2.0)
    health = mesh_health(positions, faces)
    assert (health.vertices, health.faces, health.welded_vertices) == (8, 12, 8)
    assert health.watertight and health.edge_manifold and health.vertex_manifold
    assert health.consistently_oriented
    assert health.boundary_edges == health.non_manifold_edges == 0
    assert health.degenerate_faces == health.duplicate_faces == 0
    assert (health.components, health.euler_characteristic, health.genus) == (1, 2, 0)
    assert health.volume == pytest.approx(8.0)
    assert health.area == pytest.approx(24.0)
    assert health.bounds == [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    # Right isosceles triangles: longest edge^2 / (2 area) = 8 / 4 = 2, not slivers.
    assert health.sliver_faces_10 == 0
    assert health.uv_coverage is None and health.uv_out_of_range is None
    assert health.to_dict()["genus"] == 0


def test_inverted_and_inconsistent_windings_are_seen():
    positions, faces = cube()
    assert mesh_health(positions, faces[:, ::-1]).volume == pytest.approx(-8.0)
    mixed = faces.copy()
    mixed[0] = mixed[0, ::-1]
    health = mesh_health(positions, mixed)
    assert health.watertight and not health.consistently_oriented


def test_seam_split_vertices_still_count_as_watertight():
    positions, faces = cube()
    groups = (positions[faces].mean(axis=1)[:, 2] > 0).astype(np.int64)
    source, _, split = split_by_face_group(faces, groups)
    health = mesh_health(positions[source], split)
    assert health.vertices > 8 and health.welded_vertices == 8
    assert health.watertight and health.genus == 0


def test_torus_has_genus_one_and_two_tori_two_components():
    positions, faces = torus()
    health = mesh_health(positions, faces)
    assert health.watertight and health.vertex_manifold and health.consistently_oriented
    assert (health.genus, health.components, health.euler_characteristic) == (1, 1, 0)
    assert health.volume > 0
    moved = positions + np.array([10.0, 0.0, 0.0])
    both = mesh_health(np.concatenate([positions, moved]), np.concatenate([faces, faces + 96]))
    assert (both.components, both.genus) == (2, 2)


def test_open_square_has_four_boundary_edges():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    health = mesh_health(positions, np.array([[0, 1, 2], [0, 2, 3]]))
    assert health.boundary_edges == 4 and not health.watertight
    assert health.edge_manifold and health.vertex_manifold and health.consistently_oriented
    assert health.volume is None and health.genus is None
    assert health.euler_characteristic == 1


def test_bowtie_vertex_is_not_manifold():
    # Two triangles that touch at one vertex only: edge-manifold, not vertex-manifold.
    positions = np.array([[0, 0, 0], [1, 1, 0], [1, -1, 0], [-1, 1, 0], [-1, -1, 0]], float)
    health = mesh_health(positions, np.array([[0, 1, 2], [0, 3, 4]]))
    assert health.edge_manifold and not health.vertex_manifold
    assert health.non_manifold_vertices == 1
    assert health.components == 1


def test_three_faces_on_one_edge_are_non_manifold():
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], float)
    health = mesh_health(positions, np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]]))
    assert health.non_manifold_edges == 1 and not health.edge_manifold
    assert not health.watertight and not health.consistently_oriented


def test_slivers_degenerate_and_duplicate_faces():
    positions = np.array(
        [[0, 0, 0], [1, 0, 0], [0.5, 0.02, 0], [0.5, 0.002, 0], [2, 0, 0], [0, 1, 0]], float
    )
    faces = np.array(
        [
            [0, 1, 2],  # aspect 1 / (2 * 0.01) = 50: a sliver
            [0, 1, 3],  # aspect 500: a bad sliver
            [0, 1, 4],  # collinear: zero area
            [0, 0, 5],  # repeated vertex
            [1, 2, 0],  # the first face again
        ]
    )
    health = mesh_health(positions, faces)
    assert health.degenerate_faces == 2
    assert health.sliver_faces_10 == 3 and health.sliver_faces_100 == 1
    assert health.duplicate_faces == 1


def test_uv_coverage_and_overlap():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    full = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    health = mesh_health(positions, faces, uvs=full)
    # The shared diagonal passes through texel centres; each is counted once.
    assert health.uv_coverage == 1.0 and health.uv_overlap == 0.0
    assert health.uv_out_of_range == 0
    half = mesh_health(positions, faces, uvs=full * [0.5, 1.0])
    assert half.uv_coverage == pytest.approx(0.5) and half.uv_overlap == 0.0
    stacked = mesh_health(positions, faces, uvs=np.array([[0, 0], [1, 0], [1, 1], [1, 0]], float))
    assert stacked.uv_coverage == pytest.approx(0.5, abs=0.01)
    assert stacked.uv_overlap == 1.0  # both triangles map onto the same half
    outside = mesh_health(positions, faces, uvs=full * 1.5 - 0.25)
    assert outside.uv_out_of_range == 4 and outside.uv_coverage == 1.0


def test_uv_raster_counts_a_triangle_of_known_area():
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    raster = uv_raster(uvs, np.array([[0, 1, 2]]), resolution=256)
    assert raster.max() == 1
    assert raster.mean() == pytest.approx(0.5, abs=2 / 256)
    assert raster[0, 0] == 1 and raster[-1, -1] == 0


def test_many_tiny_faces_are_measured_like_few_large_ones():
    # A finely split square, with every vertex duplicated per face (a worst-case seam).
    n = 200
    x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1), indexing="ij")
    grid = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    index = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)]).reshape(-1, 3)
    flat = faces.reshape(-1)
    health = mesh_health(grid[flat], np.arange(len(flat)).reshape(-1, 3), uvs=grid[flat, :2])
    assert health.welded_vertices == (n + 1) ** 2
    assert health.boundary_edges == 4 * n
    assert health.vertex_manifold and health.consistently_oriented
    assert health.uv_coverage == 1.0 and health.uv_overlap < 0.01
    assert health.area == pytest.approx(1.0)


def test_weld_exact_merges_equal_positions_including_signed_zero():
    positions = np.array([[0.0, 0, 0], [1, 0, 0], [-0.0, 0, 0], [1, 0, 0]])
    welded, faces = weld_exact(positions, np.array([[0, 1, 2], [3, 2, 1]]))
    assert len(welded) == 2
    assert faces[0, 0] == faces[0, 2] and faces[1, 0] == faces[0, 1]


def test_vertex_normals_of_a_cube_point_outward():
    positions, faces = cube()
    normals = vertex_normals(positions, faces)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    assert (np.sum(normals * positions, axis=1) > 0).all()


def test_splat_stats_from_an_asset_and_from_fields():
    rng = np.random.default_rng(0)
    fields = {
        "means": rng.normal(size=(100, 3)),
        "scales": np.full((100, 3), 0.01) * [1, 2, 3],
        "rotations": np.tile([1.0, 0, 0, 0], (100, 1)),
        "opacities": np.linspace(0.5, 1.0, 100),
        "sh0": np.zeros((100, 3)),
    }
    fields = {key: value.astype(np.float32) for key, value in fields.items()}
    stats = splat_stats(SplatAsset(**fields))
    assert stats == splat_stats(fields)
    assert stats["count"] == 100 and stats["sh_degree"] == 0
    assert stats["scale_min"] == pytest.approx(0.03) and stats["scale_max"] == pytest.approx(0.03)
    assert stats["opacity_min"] == pytest.approx(0.5) and stats["opacity_max"] == 1.0
    assert stats["bounds"][0] == pytest.approx(fields["means"].min(axis=0).tolist(), rel=1e-6)
    with_rest = splat_stats(SplatAsset(**fields, sh_rest=np.zeros((100, 8, 3))))
    assert with_rest["sh_degree"] == 2
    empty = splat_stats({"means": np.zeros((0, 3)), "scales": np.zeros((0, 3))})
    assert empty["count"] == 0
