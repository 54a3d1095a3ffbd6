"""Grids of TripoSG's SDF: batched evaluation and the dense and hierarchical routes.

A *field* is any callable mapping points (M, 3) float32 to values (M,) (> 0 inside); the
pipeline passes :class:`~genesis3d.models.triposg.vae.SDFField`, whose per-shape trunk is
computed once. Points are evaluated in batches of ``batch_points`` (sized by the caller
from a memory budget), so the same code runs on a laptop CPU and on a GPU.

**Hierarchical and dense (spec 2.7b).** A dense float16 grid, optionally refined once into
a band; reproduced for parity with ``use_flash_decoder=False``. The flash ladder is in
:mod:`~genesis3d.models.triposg.flash`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from genesis3d.errors import ConfigError

if TYPE_CHECKING:
    from genesis3d.models.triposg.flash import FlashLevel

Field = Callable[[torch.Tensor], torch.Tensor]


def evaluate(field_fn: Field, points: torch.Tensor, batch_points: int) -> torch.Tensor:
    """Values of ``field_fn`` at points (M, 3), in batches; (M,) float32 on the points' device."""
    if batch_points < 1:
        raise ConfigError(f"batch_points must be at least 1, got {batch_points}")
    out = torch.empty(points.shape[0], dtype=torch.float32, device=points.device)
    for start in range(0, points.shape[0], batch_points):
        # Contiguous rows whatever the points' layout (nonzero's is column-major): kernels
        # such as norm reduce in another order on other strides, and the value of a point
        # must not depend on how its list was made.
        part = points[start : start + batch_points].contiguous()
        out[start : start + part.shape[0]] = field_fn(part).reshape(-1).float().to(out.device)
    return out


def dilate(mask: torch.Tensor, times: int) -> torch.Tensor:
    """Grow a (D, D, D) bool mask by a 3x3x3 box ``times`` times (nothing beyond the border).

    The box is separable: a 3-wide maximum along each axis in turn.
    """
    for _ in range(times):
        for axis in range(3):
            grown = mask.clone()
            size = mask.shape[axis]
            grown.narrow(axis, 1, size - 1).logical_or_(mask.narrow(axis, 0, size - 1))
            grown.narrow(axis, 0, size - 1).logical_or_(mask.narrow(axis, 1, size - 1))
            mask = grown
    return mask


@dataclass
class SampledGrid:
    """A dense grid of field values ready for marching cubes.

    Attributes:
        values: (n, n, n) float32, every point holding a value with the right sign.
        bounds: (min, max) of the cube; point 0 lies at min.
        cells: lattice spacing in units of the cube: point i lies at min + i (max - min) / cells
            (n - 1 for a grid spanning the cube; hierarchical refinement samples the lattice
            of 2^depth cells instead, see :func:`hierarchical_grid`).
        evaluated_points: how many field evaluations the grid cost.
        levels: per-level record (flash; level 0 first) when asked for.
        surface_cells: (n, n, n) bool, a superset of the cubes (by highest corner, as scikit-image names them) the surface
            can cross, or None for all: marching cubes skips the others.
    """

    values: torch.Tensor
    bounds: tuple[float, float]
    cells: int
    evaluated_points: int
    levels: list[FlashLevel] = field(default_factory=list)
    surface_cells: torch.Tensor | None = None


def dense_grid(
    field_fn: Field,
    *,
    bounds: float = 1.005,
    octree_depth: int = 8,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
) -> SampledGrid:
    """Every point of the official dense grid: 2^depth float16 points per axis (spec 2.7b).

    The coordinates are ``linspace(-bounds, bounds, 2^depth)`` rounded to float16 and the
    values are rounded to float16, as upstream holds them; the grid is returned as float32.
    """
    device = torch.device(device)
    points_per_axis = 2**octree_depth
    axis = torch.linspace(-bounds, bounds, points_per_axis, dtype=torch.float16, device=device)
    grid = torch.empty((points_per_axis,) * 3, dtype=torch.float16, device=device)
    # Slabs of whole x-planes: memory is the grid plus one batch of points.
    planes = max(1, batch_points // points_per_axis**2)
    for start in range(0, points_per_axis, planes):
        xs = axis[start : start + planes]
        points = torch.stack(torch.meshgrid(xs, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        values = evaluate(field_fn, points.float(), batch_points).to(torch.float16)
        grid[start : start + len(xs)] = values.view(len(xs), points_per_axis, points_per_axis)
    return SampledGrid(grid.float(), (-bounds, bounds), points_per_axis - 1, points_per_axis**3)


@dataclass
class HierarchicalStep:
    """What one hierarchical refinement did (for tests): the coarse grid and the refined mask."""

    coarse: torch.Tensor
    refined: torch.Tensor


def hierarchical_grid(
    field_fn: Field,
    *,
    bounds: float = 1.005,
    dense_depth: int = 8,
    final_depth: int = 9,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
    steps: list[HierarchicalStep] | None = None,
) -> SampledGrid:
    """The official hierarchical route: a dense float16 grid refined in a band (spec 2.7b).

    Each refinement upsamples the grid x2 (nearest), marks the interior coarse voxels whose
    float16 sigmoid is not saturated, grows them by a 5x5x5 box (3x3x3 from 512 points per
    axis) and re-evaluates their 8 children at ``(child - n/2) * bounds / (n/2)``.

    Args:
        steps: when given, each refinement's coarse grid and refined mask are appended.
    """
    coarse = dense_grid(
        field_fn, bounds=bounds, octree_depth=dense_depth, batch_points=batch_points, device=device
    )
    grid = coarse.values.to(torch.float16)
    count = coarse.evaluated_points
    for depth in range(dense_depth + 1, final_depth + 1):
        half = 2**depth // 2
        fine = F.interpolate(grid[None, None], scale_factor=2, mode="nearest")[0, 0]
        core = torch.sigmoid(grid[1:-1, 1:-1, 1:-1]) * 2 - 1
        band = torch.zeros_like(grid, dtype=torch.bool)
        band[1:-1, 1:-1, 1:-1] = core.abs() < 1.0
        # A 5x5x5 box (two 3x3x3 passes); 3x3x3 from 512 points per axis.
        grown = dilate(band, 2 if grid.shape[0] < 512 else 1)
        refined = torch.zeros_like(fine, dtype=torch.bool)
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    refined[dx::2, dy::2, dz::2] = grown
        children = refined.nonzero()
        coords = (children.to(torch.float16) - half) * (abs(bounds) / half)
        fine[refined] = evaluate(field_fn, coords.float(), batch_points).to(torch.float16)
        count += children.shape[0]
        if steps is not None:
            steps.append(HierarchicalStep(grid, refined))
        grid = fine
    cells = grid.shape[0] if final_depth > dense_depth else grid.shape[0] - 1
    return SampledGrid(grid.float(), (-bounds, bounds), cells, count)
