"""TripoSG's flash extraction ladder: coarse to fine, each level only near the surface.

**Flash (default, spec 2.7a).** A coarse-to-fine ladder of grids (63 -> 126 -> 252 -> 504
cells at the released depth 9): the coarsest grid is evaluated densely; each finer grid only
near the surface found on the one before. The point sets follow the official rules exactly
(:func:`near_surface` and :func:`refine_indices`). Between levels every skipped point takes
the trilinear interpolation of the coarser grid (it lies away from the surface, so its sign is
right). The final level (504^3 cells) is never made dense: :func:`flash_refined` keeps it as a
list of points, and :func:`~genesis3d.geometry.isosurface.marching_cubes_refined`
triangulates, on the CPU, the cubes whose eight corners were all evaluated, as upstream's
CUDA-only dual marching cubes skips the cubes with a NaN (unevaluated) corner. The flash
points reach at least a point past the surface, so no cube the surface crosses has a skipped
corner: this is marching cubes of the whole final grid with its skipped points interpolated.
:func:`flash_grid` is the dense twin (tests, parity). On the CPU with numba installed, the
bookkeeping between levels runs as compiled loops
(:mod:`~genesis3d.models.triposg.flash_kernels`) with the same points and grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genesis3d.errors import ConfigError
from genesis3d.models.triposg import flash_kernels
from genesis3d.models.triposg.grids import Field, SampledGrid, dilate, evaluate

#: value the official code stores at points it did not evaluate
UNEVALUATED = -10000.0
#: |f| below this is "near the surface" in the flash rules
NEAR_SURFACE = 0.95


def flash_ladder(octree_depth: int, min_resolution: int = 63, mini_grid_num: int = 4) -> list[int]:
    """Cells per axis of each flash level (official rule): [63, 126, 252, 504] at depth 9.

    The powers of two 2^depth, 2^(depth-1), ... down to ``min_resolution``, coarsest first;
    the coarsest is rounded to a multiple of ``mini_grid_num`` minus one, the others double it.
    """
    if octree_depth < 1:
        raise ConfigError(f"octree_depth must be at least 1, got {octree_depth}")
    resolution = 2**octree_depth
    ladder = [resolution] if resolution < min_resolution else []
    while resolution >= min_resolution:
        ladder.append(resolution)
        resolution //= 2
    ladder.reverse()
    first = round(ladder[0] / mini_grid_num) * mini_grid_num - 1
    if first < 1:
        raise ConfigError(
            f"min_resolution {min_resolution} and mini_grid_num {mini_grid_num} give an empty first level"
        )
    return [first * 2**level for level in range(len(ladder))]


def near_surface(grid: torch.Tensor, evaluated: torch.Tensor) -> torch.Tensor:
    """Voxels of a level that the next level refines (official rule, before dilation).

    A voxel is marked when it was evaluated and either its sign differs from one of its six
    face neighbours (replicate padding; unevaluated neighbours count as the voxel itself) or
    |f| < 0.95.

    Args:
        grid: (D, D, D) float values (anything at unevaluated voxels).
        evaluated: (D, D, D) bool.

    Returns:
        (D, D, D) bool.
    """
    sign = torch.sign(grid.float())
    differs = torch.zeros_like(evaluated)
    for axis in range(3):
        size = sign.shape[axis]
        low, high = sign.narrow(axis, 0, size - 1), sign.narrow(axis, 1, size - 1)
        changes = low != high
        # The neighbour above differs (and was evaluated); the neighbour below likewise. A
        # border voxel's missing neighbour is itself, so it never differs.
        differs.narrow(axis, 0, size - 1).logical_or_(changes & evaluated.narrow(axis, 1, size - 1))
        differs.narrow(axis, 1, size - 1).logical_or_(changes & evaluated.narrow(axis, 0, size - 1))
    return evaluated & (differs | (grid.abs() < NEAR_SURFACE))


def refine_indices(marked: torch.Tensor, *, final: bool) -> torch.Tensor:
    """Points of the next (2x finer) grid to evaluate, official rule.

    Non-final levels dilate the coarse mask twice and the fine set once; the final level
    dilates only the fine set, twice.

    Args:
        marked: (D, D, D) bool from :func:`near_surface`.
        final: whether the next level is the last.

    Returns:
        (2D - 1, 2D - 1, 2D - 1) bool mask of the fine points.
    """
    if not final:
        marked = dilate(marked, 2)
    size = 2 * marked.shape[0] - 1
    fine = torch.zeros((size, size, size), dtype=torch.bool, device=marked.device)
    fine[::2, ::2, ::2] = marked
    return dilate(fine, 1 if not final else 2)


def final_points(marked: torch.Tensor, *, ordered: bool = True) -> torch.Tensor:
    """The points of the final level, without the fine grid: ``refine_indices(marked,
    final=True).nonzero()``.

    A fine point ``p`` is refined when a marked coarse voxel ``c`` has |p - 2c| <= 2 on every
    axis. Along one axis an even ``p = 2q`` is reached from c in {q - 1, q, q + 1} and an odd
    ``p = 2q + 1`` from c in {q, q + 1}, so each of the eight parity classes is a separable
    box operation on the coarse mask.

    Args:
        marked: (D, D, D) bool from :func:`near_surface`.
        ordered: sort the points in row-major order (the official order); otherwise they
            come grouped by parity class, which is all marching cubes needs.

    Returns:
        (N, 3) int64 fine indices in [0, 2D - 2].
    """
    size = 2 * marked.shape[0] - 1
    parts = []
    for parity in ((x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)):
        mask = marked
        for axis, odd in enumerate(parity):
            length = mask.shape[axis]
            if odd:
                mask = mask.narrow(axis, 0, length - 1) | mask.narrow(axis, 1, length - 1)
            else:
                grown = mask.clone()
                grown.narrow(axis, 1, length - 1).logical_or_(mask.narrow(axis, 0, length - 1))
                grown.narrow(axis, 0, length - 1).logical_or_(mask.narrow(axis, 1, length - 1))
                mask = grown
        parts.append(mask.nonzero() * 2 + torch.tensor(parity, device=marked.device))
    points = torch.cat(parts)
    if not ordered:
        return points
    key = (points[:, 0] * size + points[:, 1]) * size + points[:, 2]
    return points[torch.argsort(key)]


def _axis(bound_min: float, bound_max: float, cells: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.linspace(bound_min, bound_max, cells + 1, dtype=np.float32)).to(
        device
    )


def _points_at(indices: torch.Tensor, step: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """Official fine-level coordinates: index * float32(size / R) + float32(min), float32."""
    return indices.float() * step + low


@dataclass
class FlashLevel:
    """One refinement level: the points it evaluated and their values.

    Attributes:
        cells: cells per axis of the level's grid (points per axis = cells + 1).
        indices: (N, 3) int64 grid indices, row-major order.
        values: (N,) float32.
    """

    cells: int
    indices: torch.Tensor
    values: torch.Tensor


@dataclass
class RefinedGrid:
    """The flash ladder's result before its final grid is made dense.

    Attributes:
        coarse: (n, n, n) float32 values of the level before the last, every point holding a
            value with the right sign (the final level's skipped points interpolate it).
        indices: (N, 3) int64 points of the final level (2n - 1 per axis), row-major order
            (the official evaluation order).
        values: (N,) float32 field values at them.
        bounds: (min, max) of the cube.
        evaluated_points: how many field evaluations the levels cost.
    """

    coarse: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    bounds: tuple[float, float]
    evaluated_points: int


def flash_grid(
    field_fn: Field,
    *,
    bounds: float = 1.005,
    octree_depth: int = 9,
    min_resolution: int = 63,
    mini_grid_num: int = 4,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
    keep_levels: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SampledGrid:
    """Sample the field coarse to fine with the official flash ladder.

    Args:
        field_fn: points (M, 3) float32 -> values (M,) (> 0 inside).
        bounds: half-size of the cube [-bounds, bounds]^3.
        octree_depth: the finest level has about 2^depth cells per axis (504 at 9).
        min_resolution, mini_grid_num: shape the ladder (official defaults 63 and 4).
        batch_points: points per field call.
        device: where the grids live.
        keep_levels: record every level's points and values (for tests).
        progress: called with (level done from 1, levels).

    Returns:
        The finest grid, dense (skipped points filled from the coarser level). This is the
        reference for :func:`flash_refined`, which never allocates the finest grid.
    """
    return _flash(
        field_fn,
        bounds,
        octree_depth,
        min_resolution,
        mini_grid_num,
        batch_points,
        device,
        keep_levels,
        progress,
        dense_final=True,
    )


def flash_refined(
    field_fn: Field,
    *,
    bounds: float = 1.005,
    octree_depth: int = 9,
    min_resolution: int = 63,
    mini_grid_num: int = 4,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> RefinedGrid:
    """:func:`flash_grid` with the same evaluated points, keeping the final level sparse.

    The final level (504^3 cells at depth 9) is what costs memory and time when made dense;
    here it stays a list of points over the level before it, for
    :func:`~genesis3d.geometry.isosurface.marching_cubes_refined`. Needs a ladder of at
    least two levels (see :func:`flash_ladder`).
    """
    return _flash(
        field_fn,
        bounds,
        octree_depth,
        min_resolution,
        mini_grid_num,
        batch_points,
        device,
        False,
        progress,
        dense_final=False,
    )


def _flash(
    field_fn: Field,
    bounds: float,
    octree_depth: int,
    min_resolution: int,
    mini_grid_num: int,
    batch_points: int,
    device: torch.device | str,
    keep_levels: bool,
    progress: Callable[[int, int], None] | None,
    *,
    dense_final: bool,
) -> SampledGrid | RefinedGrid:
    device = torch.device(device)
    ladder = flash_ladder(octree_depth, min_resolution, mini_grid_num)
    if not dense_final and len(ladder) < 2:
        raise ConfigError(
            f"the flash ladder at depth {octree_depth} has one level ({ladder}); "
            "use flash_grid for it"
        )
    low, high = -float(bounds), float(bounds)
    axis = _axis(low, high, ladder[0], device)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    size0 = ladder[0] + 1
    grid = evaluate(field_fn, points, batch_points).view(size0, size0, size0)
    evaluated = torch.ones_like(grid, dtype=torch.bool)
    count = points.shape[0]
    levels = [FlashLevel(ladder[0], torch.empty(0, 3), grid.clone())] if keep_levels else []
    if progress is not None:
        progress(1, len(ladder))
    compiled = flash_kernels.compiled_available(device)
    for number, cells in enumerate(ladder[1:], start=1):
        final = number == len(ladder) - 1
        reach = flash_kernels.FINAL_REACH if final else flash_kernels.LEVEL_REACH
        if compiled:
            marked = flash_kernels.near_surface(grid, evaluated)
            indices, fine = flash_kernels.refine_points(
                marked, reach, mask=not final or dense_final
            )
        elif final and not dense_final:
            indices, fine = final_points(near_surface(grid, evaluated)), None
        else:
            fine = refine_indices(near_surface(grid, evaluated), final=final)
            indices = fine.nonzero()
        step, start = np.float32((high - low) / cells), np.float32(low)
        if compiled:
            points = flash_kernels.points_at(indices, step, start)
        else:
            points = _points_at(indices, torch.tensor(step, device=device), torch.tensor(start))
        values = evaluate(field_fn, points, batch_points)
        count += indices.shape[0]
        if progress is not None:
            progress(number + 1, len(ladder))
        if fine is None:
            return RefinedGrid(grid, indices, values, (low, high), count)
        # Skipped points lie away from the surface: the coarse grid gives them their sign.
        if compiled:
            grid = flash_kernels.upsample_grid(grid, indices, values)
        else:
            grid = F.interpolate(
                grid[None, None], size=fine.shape, mode="trilinear", align_corners=True
            )[0, 0]
            grid[fine] = values
        evaluated = fine
        if keep_levels:
            levels.append(FlashLevel(cells, indices, values))
    # The surface runs through evaluated points only (skipped ones keep the coarse sign), so
    # a cube it crosses has an evaluated corner: the evaluated set grown by one holds all
    # its corners.
    surface = dilate(evaluated, 1) if len(ladder) > 1 else None
    return SampledGrid(grid, (low, high), ladder[-1], count, levels, surface)
