"""Compiled twins of the flash ladder's bookkeeping, for grids on the CPU.

The flash ladder (:mod:`genesis3d.models.triposg.flash`) marks the voxels of a level
near the surface (:func:`~genesis3d.models.triposg.flash.near_surface`), lists the points
of the next level around them (:func:`~genesis3d.models.triposg.flash.refine_indices`,
:func:`~genesis3d.models.triposg.flash.final_points`) and fills the next level's grid by
trilinear interpolation before writing the evaluated values. In PyTorch each is a chain of
whole-grid passes over the 253^3 level; here each is one compiled loop (numba, the
``export`` extra) with the same results:

- :func:`near_surface` marks in one pass over the grid.
- :func:`refine_points` dilates the marks into the next level as bit rows along the last
  axis (a fine point ``p`` is refined when a marked voxel ``c`` has ``|p - 2c| <= reach`` on
  every axis) and lists the points in row-major order, the order of ``nonzero``.
- :func:`upsample_grid` interpolates with the arithmetic of ``F.interpolate(mode="trilinear",
  align_corners=True)`` (the last axis first, ``a * 0.5 + b * 0.5``), then writes the values.
- :func:`points_at` computes the official coordinates of listed points in one pass.

``tests/models/triposg/test_flash_kernels.py`` compares each with its PyTorch twin.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
import torch

from genesis3d.geometry.compiled import use_numba

logger = logging.getLogger(__name__)

#: |f| below this is "near the surface" (the official threshold, in float32)
_NEAR = np.float32(0.95)
#: reach of the official refinement in fine cells: the final level dilates the fine set
#: twice; the others dilate the coarse marks twice (4 fine cells) and the fine set once
FINAL_REACH, LEVEL_REACH = 2, 5
#: the index of a word's lowest set bit, by the de Bruijn sequence trick: isolated, the bit
#: times the sequence has a distinct top six bits for each position
_DEBRUIJN = np.int64(0x03F79D71B4CB0A89)
_LOWEST_BIT = np.zeros(64, np.int64)
for _bit in range(64):
    _LOWEST_BIT[((1 << _bit) * 0x03F79D71B4CB0A89 & (2**64 - 1)) >> 58] = _bit
del _bit


def compiled_available(device: torch.device) -> bool:
    """Whether the compiled kernels serve grids on ``device`` (the CPU, numba installed)."""
    return device.type == "cpu" and use_numba("auto", "flash extraction levels")


@functools.cache
def _kernels() -> tuple[Callable[..., object], ...]:
    import numba

    @numba.njit(cache=True)
    def near(grid, evaluated, marked):
        size_x, size_y, size_z = grid.shape
        for x in range(size_x):
            for y in range(size_y):
                for z in range(size_z):
                    if not evaluated[x, y, z]:
                        marked[x, y, z] = False
                        continue
                    value = grid[x, y, z]
                    if abs(value) < _NEAR:
                        marked[x, y, z] = True
                        continue
                    sign = np.sign(value)
                    differs = False
                    if x > 0 and evaluated[x - 1, y, z] and np.sign(grid[x - 1, y, z]) != sign:
                        differs = True
                    elif (
                        x + 1 < size_x
                        and evaluated[x + 1, y, z]
                        and np.sign(grid[x + 1, y, z]) != sign
                    ):
                        differs = True
                    elif y > 0 and evaluated[x, y - 1, z] and np.sign(grid[x, y - 1, z]) != sign:
                        differs = True
                    elif (
                        y + 1 < size_y
                        and evaluated[x, y + 1, z]
                        and np.sign(grid[x, y + 1, z]) != sign
                    ):
                        differs = True
                    elif z > 0 and evaluated[x, y, z - 1] and np.sign(grid[x, y, z - 1]) != sign:
                        differs = True
                    elif (
                        z + 1 < size_z
                        and evaluated[x, y, z + 1]
                        and np.sign(grid[x, y, z + 1]) != sign
                    ):
                        differs = True
                    marked[x, y, z] = differs

    @numba.njit(cache=True)
    def dilate(marked, reach):
        """Fine rows (px, py) of bits along the fine last axis: 64 points a word."""
        size = marked.shape[0]
        fine = 2 * size - 1
        words = (fine + 63) // 64
        along_z = np.zeros((size, size, words), np.int64)
        filled = np.zeros((size, size), np.bool_)
        for x in range(size):
            for y in range(size):
                for z in range(size):
                    if marked[x, y, z]:
                        filled[x, y] = True
                        for p in range(max(2 * z - reach, 0), min(2 * z + reach, fine - 1) + 1):
                            along_z[x, y, p >> 6] |= np.int64(1) << (p & 63)
        along_y = np.zeros((size, fine, words), np.int64)
        filled_y = np.zeros((size, fine), np.bool_)
        for x in range(size):
            for y in range(size):
                if not filled[x, y]:
                    continue
                for p in range(max(2 * y - reach, 0), min(2 * y + reach, fine - 1) + 1):
                    filled_y[x, p] = True
                    for word in range(words):
                        along_y[x, p, word] |= along_z[x, y, word]
        rows = np.zeros((fine, fine, words), np.int64)
        for x in range(size):
            for p in range(max(2 * x - reach, 0), min(2 * x + reach, fine - 1) + 1):
                for y in range(fine):
                    if filled_y[x, y]:
                        for word in range(words):
                            rows[p, y, word] |= along_y[x, y, word]
        return rows

    @numba.njit(cache=True)
    def emit(rows, want_mask):
        fine, _, words = rows.shape
        counts = np.zeros(fine * fine + 1, np.int64)
        for x in range(fine):
            for y in range(fine):
                total = 0
                for word in range(words):
                    bits = rows[x, y, word]
                    while bits:
                        bits &= bits - 1
                        total += 1
                counts[x * fine + y + 1] = total
        for row in range(1, len(counts)):
            counts[row] += counts[row - 1]
        points = np.empty((counts[-1], 3), np.int64)
        mask = np.zeros((fine, fine, fine) if want_mask else (0, 0, 0), np.bool_)
        for x in range(fine):
            for y in range(fine):
                position = counts[x * fine + y]
                for word in range(words):
                    bits = rows[x, y, word]
                    while bits:
                        lowest = bits & -bits
                        z = word * 64 + _LOWEST_BIT[((lowest * _DEBRUIJN) >> 58) & 63]
                        points[position, 0], points[position, 1], points[position, 2] = x, y, z
                        position += 1
                        if want_mask:
                            mask[x, y, z] = True
                        bits ^= lowest
        return points, mask

    @numba.njit(cache=True)
    def upsample(coarse, indices, values, fine):
        halfway = np.float32(0.5)
        size = fine.shape[0]
        for x in range(size):
            x0, x1 = x >> 1, (x + 1) >> 1
            for y in range(size):
                y0, y1 = y >> 1, (y + 1) >> 1
                for z in range(size):
                    z0, z1 = z >> 1, (z + 1) >> 1
                    # F.interpolate's nesting: z innermost, then y, then x.
                    if z & 1:
                        a = coarse[x0, y0, z0] * halfway + coarse[x0, y0, z1] * halfway
                        b = coarse[x0, y1, z0] * halfway + coarse[x0, y1, z1] * halfway
                        c = coarse[x1, y0, z0] * halfway + coarse[x1, y0, z1] * halfway
                        d = coarse[x1, y1, z0] * halfway + coarse[x1, y1, z1] * halfway
                    else:
                        a, b = coarse[x0, y0, z0], coarse[x0, y1, z0]
                        c, d = coarse[x1, y0, z0], coarse[x1, y1, z0]
                    if y & 1:
                        a = a * halfway + b * halfway
                        c = c * halfway + d * halfway
                    value = a * halfway + c * halfway if x & 1 else a
                    fine[x, y, z] = value
        for row in range(indices.shape[0]):
            fine[indices[row, 0], indices[row, 1], indices[row, 2]] = values[row]

    @numba.njit(cache=True)
    def coordinates(indices, step, low, points):
        for row in range(indices.shape[0]):
            for axis in range(3):
                points[row, axis] = np.float32(indices[row, axis]) * step + low

    return near, dilate, emit, upsample, coordinates


def near_surface(grid: torch.Tensor, evaluated: torch.Tensor) -> torch.Tensor:
    """:func:`~genesis3d.models.triposg.flash.near_surface` in one compiled pass.

    Args:
        grid: (D, D, D) float32 on the CPU.
        evaluated: (D, D, D) bool.

    Returns:
        (D, D, D) bool.
    """
    near = _kernels()[0]
    marked = np.empty(tuple(grid.shape), np.bool_)
    near(grid.float().contiguous().numpy(), evaluated.contiguous().numpy(), marked)
    return torch.from_numpy(marked)


def refine_points(
    marked: torch.Tensor, reach: int, *, mask: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The next level's points around the marks, row-major, and optionally their mask.

    Args:
        marked: (D, D, D) bool on the CPU.
        reach: fine cells a mark reaches on every axis (:data:`FINAL_REACH` for the final
            level, :data:`LEVEL_REACH` for the others).
        mask: also return the (2D - 1)^3 bool mask of the points.

    Returns:
        ((N, 3) int64 fine indices, the mask or None).
    """
    _, dilate, emit, _, _ = _kernels()
    rows = dilate(marked.contiguous().numpy(), reach)
    points, fine = emit(rows, mask)
    return torch.from_numpy(points), (torch.from_numpy(fine) if mask else None)


def upsample_grid(
    coarse: torch.Tensor, indices: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """The next level's grid: ``coarse`` interpolated to 2D - 1 points per axis as
    ``F.interpolate(mode="trilinear", align_corners=True)`` does, ``values`` at ``indices``.

    Args:
        coarse: (D, D, D) float32 on the CPU.
        indices: (N, 3) int64 fine indices.
        values: (N,) float32.

    Returns:
        (2D - 1, 2D - 1, 2D - 1) float32.
    """
    upsample = _kernels()[3]
    size = 2 * coarse.shape[0] - 1
    fine = np.empty((size, size, size), np.float32)
    upsample(
        coarse.float().contiguous().numpy(),
        indices.contiguous().numpy(),
        values.float().contiguous().numpy(),
        fine,
    )
    return torch.from_numpy(fine)


def points_at(indices: torch.Tensor, step: np.float32, low: np.float32) -> torch.Tensor:
    """Official point coordinates ``float32(index) * step + low`` in float32, one pass.

    Args:
        indices: (N, 3) int64 grid indices on the CPU.
        step, low: float32 spacing and lower bound.

    Returns:
        (N, 3) float32.
    """
    coordinates = _kernels()[4]
    points = np.empty((indices.shape[0], 3), np.float32)
    coordinates(indices.contiguous().numpy(), np.float32(step), np.float32(low), points)
    return torch.from_numpy(points)
