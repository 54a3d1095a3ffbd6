"""Sampling TripoSG's SDF on grids: the official flash ladder, hierarchical and dense routes.

A *field* is any callable mapping points (M, 3) float32 to values (M,) (> 0 inside); the
pipeline passes :class:`~genesis3d.models.triposg.vae.SDFField`, whose per-shape trunk is
computed once. Points are evaluated in batches of ``batch_points`` (sized by the caller
from a memory budget), so the same code runs on a laptop CPU and on a GPU.

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

**Hierarchical and dense (spec 2.7b).** A dense float16 grid, optionally refined once into
a band; reproduced for parity with ``use_flash_decoder=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from genesis3d.errors import ConfigError
from genesis3d.geometry.isosurface import (
    index_to_world,
    marching_cubes_indices,
    marching_cubes_refined,
)
from genesis3d.models.triposg import flash_kernels

Field = Callable[[torch.Tensor], torch.Tensor]

#: value the official code stores at points it did not evaluate
UNEVALUATED = -10000.0
#: |f| below this is "near the surface" in the flash rules
NEAR_SURFACE = 0.95


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


def _dilate(mask: torch.Tensor, times: int) -> torch.Tensor:
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
        marked = _dilate(marked, 2)
    size = 2 * marked.shape[0] - 1
    fine = torch.zeros((size, size, size), dtype=torch.bool, device=marked.device)
    fine[::2, ::2, ::2] = marked
    return _dilate(fine, 1 if not final else 2)


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
    surface = _dilate(evaluated, 1) if len(ladder) > 1 else None
    return SampledGrid(grid, (low, high), ladder[-1], count, levels, surface)


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
        grown = _dilate(band, 2 if grid.shape[0] < 512 else 1)
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


Method = Literal["flash", "hierarchical", "dense"]
METHODS: tuple[str, ...] = ("flash", "hierarchical", "dense")


@dataclass(frozen=True)
class ExtractionOptions:
    """How the mesh is extracted from the SDF.

    Attributes:
        method: "flash" (coarse to fine, the official default), "hierarchical" (dense grid
            refined once in a band) or "dense" (every point of one grid).
        octree_depth: the final grid has about 2^depth cells per axis (released: 9, i.e. 504
            cells for flash and 512 points for hierarchical); "dense" evaluates 2^depth
            points per axis.
        dense_depth: hierarchical only, the depth of the dense first grid (released: 8).
        bounds: half-size of the sampled cube (released: 1.005).
        official_scale: map vertices the way upstream does (dividing grid indices by
            2^depth instead of the cell count), which shrinks the mesh by up to 1.6% toward
            the (-bounds) corner; only for comparisons with upstream meshes.
    """

    method: Method = "flash"
    octree_depth: int = 9
    dense_depth: int = 8
    bounds: float = 1.005
    official_scale: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"extraction method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if not 4 <= self.octree_depth <= 10:
            raise ConfigError(f"octree_depth must be between 4 and 10, got {self.octree_depth}")
        if self.method == "hierarchical" and not 1 <= self.dense_depth <= self.octree_depth:
            raise ConfigError(
                f"dense_depth must be between 1 and octree_depth ({self.octree_depth}), got {self.dense_depth}"
            )
        if not 0 < self.bounds <= 4:
            raise ConfigError(f"bounds must be in (0, 4], got {self.bounds}")


def sample_grid(
    field_fn: Field,
    options: ExtractionOptions,
    *,
    batch_points: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SampledGrid:
    """The dense grid of the chosen method (see the module docstring)."""
    if options.method == "flash":
        return flash_grid(
            field_fn,
            bounds=options.bounds,
            octree_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
            progress=progress,
        )
    if options.method == "hierarchical":
        return hierarchical_grid(
            field_fn,
            bounds=options.bounds,
            dense_depth=options.dense_depth,
            final_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
        )
    return dense_grid(
        field_fn,
        bounds=options.bounds,
        octree_depth=options.octree_depth,
        batch_points=batch_points,
        device=device,
    )


def extract_mesh(
    field_fn: Field,
    options: ExtractionOptions | None = None,
    *,
    batch_points: int = 16384,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the field and triangulate its zero set on the CPU.

    Returns:
        (vertices (v, 3) float32 in the model frame, faces (f, 3) int32 wound outward).

    Raises:
        ExtractionError: the field is empty, full or not finite.
    """
    options = options or ExtractionOptions()
    if options.method == "flash" and len(flash_ladder(options.octree_depth)) > 1:
        refined = flash_refined(
            field_fn,
            bounds=options.bounds,
            octree_depth=options.octree_depth,
            batch_points=batch_points,
            device=device,
            progress=progress,
        )
        (low, high) = refined.bounds
        cells = 2 * (refined.coarse.shape[0] - 1)
        vertices, faces = marching_cubes_refined(
            refined.coarse.cpu().numpy(),
            refined.indices.cpu().numpy(),
            refined.values.cpu().numpy(),
            0.0,
        )
    else:
        grid = sample_grid(
            field_fn, options, batch_points=batch_points, device=device, progress=progress
        )
        values = grid.values.cpu().numpy()
        surface = None if grid.surface_cells is None else grid.surface_cells.cpu().numpy()
        (low, high), cells = grid.bounds, grid.cells
        del grid  # the torch grid; marching cubes needs only the arrays
        vertices, faces = marching_cubes_indices(values, 0.0, cells=surface)
    divisor = 2**options.octree_depth if options.official_scale else cells
    world = index_to_world(vertices, (cells + 1,) * 3, (low,) * 3, (high,) * 3, divisor=divisor)
    # The field is larger inside: reverse scikit-image's winding for outward normals.
    return world, np.ascontiguousarray(faces[:, ::-1])
