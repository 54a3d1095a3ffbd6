"""Mesh extraction from an SDF on analytic fields, and the extraction fixture cases."""

import numpy as np
import pytest
import torch

from genesis3d.errors import ConfigError, ExtractionError
from genesis3d.models.triposg.extraction import ExtractionOptions, extract_mesh
from genesis3d.models.triposg.flash import (
    final_points,
    flash_grid,
    flash_ladder,
    flash_refined,
    near_surface,
    refine_indices,
)
from genesis3d.testing.parity import run_case

RADIUS = 0.6


def sphere(points, steepness=40.0):
    """Positive inside a sphere of RADIUS, steep like TripoSG's field (|f| < 0.95 near it only)."""
    return (RADIUS - points.norm(dim=-1)) * steepness


@pytest.mark.parametrize("case", ["dense_extract", "hierarchical_extract", "flash_extract"])
def test_case(fixtures_dir, case):
    result = run_case(fixtures_dir / "triposg" / case)
    assert result.passed, result.detail


def test_ladder_of_the_released_settings():
    assert flash_ladder(9) == [63, 126, 252, 504]
    assert flash_ladder(6, min_resolution=15) == [15, 30, 60]
    assert flash_ladder(6) == [63]


@pytest.mark.parametrize("method", ["flash", "dense", "hierarchical"])
def test_a_sphere_keeps_its_radius_and_centre(method):
    options = ExtractionOptions(method=method, octree_depth=7, dense_depth=6)
    vertices, faces = extract_mesh(sphere, options, batch_points=50_000)
    cell = 2 * options.bounds / (2**7 - 1)
    radii = np.linalg.norm(vertices, axis=1)
    assert np.abs(radii - RADIUS).max() < cell / 2
    assert np.abs(vertices.mean(axis=0)).max() < cell / 2
    # Outward winding: the signed volume is positive and close to the sphere's.
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert volume == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)


def test_official_scale_reproduces_the_upstream_shrink():
    exact, _ = extract_mesh(sphere, ExtractionOptions(method="dense", octree_depth=6))
    shrunk, _ = extract_mesh(
        sphere, ExtractionOptions(method="dense", octree_depth=6, official_scale=True)
    )
    factor = (2**6 - 1) / 2**6
    np.testing.assert_allclose(shrunk, (exact + 1.005) * factor - 1.005, atol=1e-5)


def test_flash_evaluates_only_near_the_surface_and_matches_dense():
    evaluated = []

    def counting(points):
        evaluated.append(points.shape[0])
        return sphere(points)

    sampled = flash_grid(counting, octree_depth=7, batch_points=100_000, keep_levels=True)
    assert sampled.evaluated_points == sum(evaluated)
    # Level 0 is dense (64^3); the 127^3 level is evaluated only in a thin shell.
    assert len(sampled.levels[1].values) == sum(evaluated) - 64**3 < 127**3 / 10
    # Every evaluated value equals the field; skipped points keep the right sign.
    axis = torch.linspace(-1.005, 1.005, 127)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    truth = sphere(points).view(127, 127, 127)
    index = sampled.levels[1].indices
    torch.testing.assert_close(
        sampled.values[index[:, 0], index[:, 1], index[:, 2]],
        truth[index[:, 0], index[:, 1], index[:, 2]],
    )
    assert torch.equal(torch.sign(sampled.values), torch.sign(truth))


def test_near_surface_ignores_unevaluated_neighbours():
    grid = torch.full((5, 5, 5), 2.0)
    evaluated = torch.ones(5, 5, 5, dtype=torch.bool)
    evaluated[2, 2, 3] = False
    grid[2, 2, 3] = -10000.0
    marked = near_surface(grid, evaluated)
    assert not marked.any()
    grid[2, 2, 1] = -2.0
    marked = near_surface(grid, evaluated)
    assert marked[2, 2, 1] and marked[2, 2, 2] and marked[2, 2, 0] and not marked[2, 2, 3]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (lambda p: torch.full(p.shape[:1], -3.0), "empty"),
        (lambda p: torch.full(p.shape[:1], 3.0), "full"),
        (lambda p: torch.full(p.shape[:1], float("nan")), "non-finite"),
    ],
)
def test_a_broken_field_raises_a_clear_error(field, message):
    with pytest.raises(ExtractionError, match=message):
        extract_mesh(field, ExtractionOptions(method="dense", octree_depth=4))


def test_options_are_validated():
    with pytest.raises(ConfigError, match="method"):
        ExtractionOptions(method="marching")
    with pytest.raises(ConfigError, match="octree_depth"):
        ExtractionOptions(octree_depth=12)


def test_flash_triangulates_only_near_evaluated_points_and_loses_nothing():
    from genesis3d.geometry.isosurface import marching_cubes_indices

    sampled = flash_grid(sphere, octree_depth=7, batch_points=100_000)
    values = sampled.values.numpy()
    assert sampled.surface_cells.float().mean() < 0.2
    whole = marching_cubes_indices(values)
    masked = marching_cubes_indices(values, cells=sampled.surface_cells.numpy())
    assert len(masked[0]) == len(whole[0]) and len(masked[1]) == len(whole[1])
    np.testing.assert_array_equal(np.sort(masked[0], axis=0), np.sort(whole[0], axis=0))


@pytest.mark.parametrize("size", [9, 17, 33])
def test_final_points_equal_the_dense_refinement(size):
    generator = torch.Generator().manual_seed(size)
    marked = torch.rand((size,) * 3, generator=generator) < 0.02
    marked[0, 0, 0] = marked[-1, -1, -1] = True
    expected = refine_indices(marked, final=True).nonzero()
    assert torch.equal(final_points(marked), expected)
    grouped = final_points(marked, ordered=False)
    assert len(grouped) == len(expected)
    assert torch.equal(torch.unique(grouped, dim=0), expected)


def test_sparse_flash_gives_the_dense_flash_surface():
    """extract_mesh keeps the final level sparse; flash_grid is its dense twin."""
    from genesis3d.geometry.isosurface import index_to_world, marching_cubes_indices

    options = ExtractionOptions(method="flash", octree_depth=7)
    vertices, faces = extract_mesh(sphere, options, batch_points=100_000)
    sampled = flash_grid(sphere, octree_depth=7, batch_points=100_000)
    grid_vertices, grid_faces = marching_cubes_indices(
        sampled.values.numpy(), cells=sampled.surface_cells.numpy()
    )
    points = sampled.cells + 1
    world = index_to_world(grid_vertices, (points,) * 3, (-1.005,) * 3, (1.005,) * 3)
    assert len(faces) == len(grid_faces) and len(vertices) == len(world)
    np.testing.assert_allclose(np.sort(vertices, axis=0), np.sort(world, axis=0), atol=1e-5)
    refined = flash_refined(sphere, octree_depth=7, batch_points=100_000)
    assert refined.evaluated_points == sampled.evaluated_points
