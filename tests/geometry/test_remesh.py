"""Closed-surface remeshing on analytic shapes: one closed manifold shell near the input."""

from __future__ import annotations

import numpy as np
import pytest

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.compare import compare_meshes
from genesis3d.geometry.isosurface import marching_cubes_indices
from genesis3d.geometry.measure import mesh_health
from genesis3d.geometry.mesh_ops import weld_exact
from genesis3d.geometry.remesh import narrow_band_udf, remesh_closed, remesh_grid

RESOLUTION = 48


def cube_grid(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed cube [-1, 1]^3 whose faces are ``subdivisions`` x ``subdivisions`` quads."""
    steps = np.linspace(-1.0, 1.0, subdivisions + 1)
    u, v = np.meshgrid(steps, steps, indexing="ij")
    positions, faces = [], []
    for axis in range(3):
        for side in (-1.0, 1.0):
            face = np.empty((subdivisions + 1, subdivisions + 1, 3))
            face[..., axis] = side
            face[..., (axis + 1) % 3] = u
            face[..., (axis + 2) % 3] = v
            base = sum(len(p) for p in positions)
            index = np.arange((subdivisions + 1) ** 2).reshape(subdivisions + 1, -1) + base
            a, b = index[:-1, :-1].ravel(), index[1:, :-1].ravel()
            c, d = index[1:, 1:].ravel(), index[:-1, 1:].ravel()
            quads = np.stack([a, b, c, a, c, d], axis=1).reshape(-1, 3)
            faces.append(quads if side > 0 else quads[:, ::-1])
            positions.append(face.reshape(-1, 3))
    return weld_exact(np.concatenate(positions), np.concatenate(faces))


def sphere(subdivisions: int = 16) -> tuple[np.ndarray, np.ndarray]:
    positions, faces = cube_grid(subdivisions)
    return positions / np.linalg.norm(positions, axis=1, keepdims=True), faces


def torus(major: float = 1.0, minor: float = 0.4, count: int = 48) -> tuple[np.ndarray, np.ndarray]:
    angle = np.arange(count) * 2 * np.pi / count
    theta, phi = np.meshgrid(angle, angle[: count // 2] * 2, indexing="ij")
    ring = major + minor * np.cos(phi)
    positions = np.stack([ring * np.cos(theta), ring * np.sin(theta), minor * np.sin(phi)], -1)
    rows, cols = theta.shape
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b = index, np.roll(index, -1, axis=0)
    c, d = np.roll(b, -1, axis=1), np.roll(index, -1, axis=1)
    faces = np.stack([a, b, c, a, c, d], axis=-1).reshape(-1, 3)
    return positions.reshape(-1, 3), faces


def box_with_fin(thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """A cube and a thin plate stuck into its side (self-intersecting, two pieces)."""
    box, box_faces = cube_grid(1)
    fin, fin_faces = cube_grid(1)
    fin = fin * np.array([0.6, 0.5 * thickness, 0.6]) + np.array([1.5, 0.0, 0.0])
    return np.concatenate([box, fin]), np.concatenate([box_faces, fin_faces + len(box)])


def open_sphere(hole_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The sphere without the faces of its north cap of radius ``hole_radius``."""
    positions, faces = sphere()
    centres = positions[faces].mean(axis=1)
    cap = (centres[:, 2] > 0) & (np.hypot(centres[:, 0], centres[:, 1]) <= hole_radius)
    return positions, faces[~cap]


def ray_crossings(positions: np.ndarray, faces: np.ndarray, origin, direction) -> int:
    """How many faces a ray crosses (Moller-Trumbore over all faces)."""
    origin, direction = np.asarray(origin, float), np.asarray(direction, float)
    corners = positions[faces].astype(np.float64)
    edge1, edge2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    p = np.cross(direction, edge2)
    determinant = np.einsum("ij,ij->i", edge1, p)
    valid = np.abs(determinant) > 1e-12
    inverse = 1.0 / np.where(valid, determinant, 1.0)
    t_vec = origin - corners[:, 0]
    u = np.einsum("ij,ij->i", t_vec, p) * inverse
    q = np.cross(t_vec, edge1)
    v = (q @ direction) * inverse
    t = np.einsum("ij,ij->i", edge2, q) * inverse
    hit = valid & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return int(hit.sum())


def check_single_closed_shell(vertices, faces, *, genus: int = 0):
    health = mesh_health(vertices, faces)
    assert health.watertight and health.edge_manifold and health.vertex_manifold
    assert health.consistently_oriented
    assert health.components == 1
    assert health.genus == genus
    assert health.volume > 0  # outward winding
    assert vertices.dtype == np.float32 and faces.dtype == np.int32
    return health


def cell_size(positions: np.ndarray, resolution: int = RESOLUTION) -> float:
    return float((positions.max(axis=0) - positions.min(axis=0)).max()) / resolution


@pytest.mark.parametrize("shape", ["sphere", "torus"])
def test_closed_shapes_come_back_as_one_shell_within_a_cell(shape):
    positions, faces = sphere() if shape == "sphere" else torus()
    vertices, out_faces = remesh_closed(positions, faces, resolution=RESOLUTION)
    check_single_closed_shell(vertices, out_faces, genus=0 if shape == "sphere" else 1)
    comparison = compare_meshes(vertices, out_faces, positions, faces, samples=20_000)
    assert comparison.chamfer < cell_size(positions)
    assert comparison.hausdorff < 1.5 * cell_size(positions)


def test_rays_through_a_convex_result_cross_it_twice():
    positions, faces = sphere()
    vertices, out_faces = remesh_closed(positions, faces, resolution=RESOLUTION)
    rng = np.random.default_rng(0)
    for _ in range(20):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        origin = -3.0 * direction + rng.uniform(-0.5, 0.5, 3)
        assert ray_crossings(vertices, out_faces, origin, direction) == 2


def test_naive_udf_level_set_gives_two_shells():
    """The level set {UDF = band} of a closed surface is an outer and an inner shell."""
    positions, faces = sphere()
    grid = remesh_grid(positions, RESOLUTION, padding=4.0)
    udf = narrow_band_udf(grid.to_grid(positions), faces, grid.shape, 2.5)
    vertices, shell_faces = marching_cubes_indices(1.0 - np.minimum(udf, 2.5), 0.0)
    health = mesh_health(vertices, shell_faces)
    assert health.watertight and health.components == 2
    origin, direction = np.array([-70.0, 0.3, 0.2]) + grid.shape[0] / 2, np.array([1.0, 0, 0])
    assert ray_crossings(vertices, shell_faces, origin, direction) == 4


def test_thin_fin_through_a_box_is_kept_as_one_solid():
    cell = cell_size(box_with_fin(0.01)[0])
    positions, faces = box_with_fin(0.3 * cell)
    vertices, out_faces = remesh_closed(positions, faces, resolution=RESOLUTION)
    check_single_closed_shell(vertices, out_faces)
    # The fin survives to its tip, at most about a cell thick.
    tip = vertices[vertices[:, 0] > 1.8]
    assert tip[:, 0].max() > 2.1 - cell
    assert np.ptp(tip[:, 1]) < 1.5 * cell
    comparison = compare_meshes(vertices, out_faces, positions, faces, samples=20_000)
    assert comparison.chamfer < cell
    assert ray_crossings(vertices, out_faces, [-3.0, 0.31, 0.17], [1.0, 0.0, 0.0]) == 2


def test_small_hole_is_sealed_without_an_inner_shell():
    positions, faces = sphere()
    cell = cell_size(positions)
    vertices, out_faces = remesh_closed(
        positions, open_sphere(1.2 * cell)[1], resolution=RESOLUTION
    )
    check_single_closed_shell(vertices, out_faces)
    comparison = compare_meshes(vertices, out_faces, positions, faces, samples=20_000)
    assert comparison.chamfer < cell
    assert ray_crossings(vertices, out_faces, [0.03, 0.02, 3.0], [0.0, 0.0, -1.0]) == 2


def test_holes_wider_than_the_band_need_a_wider_band():
    positions, faces = sphere()
    cell = cell_size(positions)
    _, holed = open_sphere(3.0 * cell)
    narrow = remesh_closed(positions, holed, resolution=RESOLUTION, band=1.0)
    # Through the hole the outside reaches the inner side: a thin bowl, half the volume gone.
    assert mesh_health(*narrow).volume < 0.5 * 4.0 / 3.0 * np.pi
    wide = remesh_closed(positions, holed, resolution=RESOLUTION, band=4.0)
    check_single_closed_shell(*wide)
    assert compare_meshes(*wide, positions, faces, samples=20_000).chamfer < cell


def test_bad_parameters_and_input_are_refused():
    positions, faces = sphere(2)
    with pytest.raises(ConfigError, match="resolution"):
        remesh_closed(positions, faces, resolution=4)
    with pytest.raises(ConfigError, match="band"):
        remesh_closed(positions, faces, band=0.5)
    with pytest.raises(ConfigError, match="dilation"):
        remesh_closed(positions, faces, band=1.0, dilation=1.0)
    with pytest.raises(ConfigError, match="keep"):
        remesh_closed(positions, faces, keep="biggest")
    with pytest.raises(InputError, match="index vertices"):
        remesh_closed(positions, faces + len(positions))
    with pytest.raises(InputError, match="NaN"):
        remesh_closed(np.full_like(positions, np.nan), faces)


def test_separate_pieces_are_kept_or_dropped_on_request():
    positions, faces = sphere(8)
    both = np.concatenate([positions, 0.5 * positions + [3.0, 0.0, 0.0]])
    both_faces = np.concatenate([faces, faces + len(positions)])
    every = mesh_health(*remesh_closed(both, both_faces, resolution=RESOLUTION, keep="all"))
    assert every.watertight and every.components == 2
    vertices, largest_faces = remesh_closed(both, both_faces, resolution=RESOLUTION)
    check_single_closed_shell(vertices, largest_faces)
    assert vertices[:, 0].max() < 1.2  # the larger sphere, centred at the origin
