"""The compiled flash bookkeeping against its PyTorch twins: same marks, points and grids."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genesis3d.models.triposg import flash, flash_kernels
from genesis3d.models.triposg.flash import near_surface, refine_indices

pytest.importorskip("numba")


def _grid(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    grid = (torch.rand((size,) * 3, generator=generator) - 0.5) * 4
    grid[grid.abs() < 0.1] = 0.0  # sign 0 differs from both others
    evaluated = torch.rand((size,) * 3, generator=generator) < 0.7
    return grid, evaluated


@pytest.mark.parametrize("size", [5, 16, 33])
def test_near_surface_marks_the_same_voxels(size):
    grid, evaluated = _grid(size, size)
    assert torch.equal(flash_kernels.near_surface(grid, evaluated), near_surface(grid, evaluated))


@pytest.mark.parametrize("size", [2, 9, 33, 40])
@pytest.mark.parametrize("final", [True, False])
def test_refined_points_and_mask_equal_the_dense_refinement(size, final):
    generator = torch.Generator().manual_seed(size)
    marked = torch.rand((size,) * 3, generator=generator) < 0.03
    marked[0, 0, 0] = marked[-1, -1, -1] = True
    expected = refine_indices(marked, final=final)
    reach = flash_kernels.FINAL_REACH if final else flash_kernels.LEVEL_REACH
    points, mask = flash_kernels.refine_points(marked, reach, mask=True)
    assert torch.equal(points, expected.nonzero())
    assert torch.equal(mask, expected)
    alone, none = flash_kernels.refine_points(marked, reach)
    assert torch.equal(alone, points) and none is None


@pytest.mark.parametrize("size", [3, 17, 32])
def test_upsampled_grid_equals_trilinear_interpolation_bit_for_bit(size):
    grid, _ = _grid(size, 100 + size)
    fine = 2 * size - 1
    generator = torch.Generator().manual_seed(size)
    listed = torch.rand((fine,) * 3, generator=generator) < 0.1
    indices = listed.nonzero()
    values = torch.randn(len(indices), generator=generator)
    expected = F.interpolate(
        grid[None, None], size=(fine,) * 3, mode="trilinear", align_corners=True
    )
    expected = expected[0, 0]
    expected[listed] = values
    assert torch.equal(flash_kernels.upsample_grid(grid, indices, values), expected)


def test_points_at_equals_the_official_coordinates():
    indices = torch.randint(0, 505, (1000, 3), generator=torch.Generator().manual_seed(0))
    step, low = np.float32(2.01 / 504), np.float32(-1.005)
    expected = flash._points_at(indices, torch.tensor(step), torch.tensor(low))
    assert torch.equal(flash_kernels.points_at(indices, step, low), expected)


def test_flash_refined_is_the_same_with_and_without_the_kernels(monkeypatch):
    def sphere(points):
        return (0.6 - points.norm(dim=-1)) * 40.0

    # Levels of 15, 30, 60 and 120 cells: every kernel runs.
    options = {"octree_depth": 7, "min_resolution": 15, "batch_points": 100_000}
    compiled = flash.flash_refined(sphere, **options)
    monkeypatch.setattr(flash_kernels, "compiled_available", lambda device: False)
    plain = flash.flash_refined(sphere, **options)
    assert torch.equal(compiled.indices, plain.indices)
    assert torch.equal(compiled.values, plain.values)
    assert torch.equal(compiled.coarse, plain.coarse)
    assert compiled.evaluated_points == plain.evaluated_points
