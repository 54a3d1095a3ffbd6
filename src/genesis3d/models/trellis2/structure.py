"""Voxel structures between the TRELLIS.2 stages: occupancy to coordinates, cascade quantisation.

Pure tensor functions of the official pipeline's glue (spec sections 1.5 and 1.6):
the structure decoder's logits become the latent voxels, and the cascade's upsampled 512-grid
voxels become the voxels of the high-resolution latent grid under the token cap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genesis3d.errors import ConfigError

#: The cascade lowers a 1536 output until the latent has fewer tokens than this.
MAX_CASCADE_TOKENS = 49152


def occupancy_coords(logits: torch.Tensor, grid: int) -> torch.Tensor:
    """Occupied voxels of the structure decoder's logits, on a ``grid``^3 latent grid.

    A voxel is occupied where its logit is > 0; for a coarser ``grid`` a voxel is occupied
    if any of its children is (max-pool by the ratio).

    Args:
        logits: (B, 1, R, R, R) occupancy logits (R = 64 for the released decoder).
        grid: latent grid size, a divisor of R (32 or 64).

    Returns:
        (T, 4) int32 (batch, x, y, z), sorted lexicographically.
    """
    size = logits.shape[-1]
    if grid <= 0 or size % grid:
        raise ConfigError(f"latent grid must divide the decoder's {size}^3 output, got {grid}")
    occupied = (logits > 0).float()
    if grid != size:
        ratio = size // grid
        occupied = F.max_pool3d(occupied, ratio, ratio)
    coords = torch.argwhere(occupied[:, 0] > 0.5)
    return coords.to(torch.int32)


def quantize_coords(coords: torch.Tensor, source_grid: int, grid: int) -> torch.Tensor:
    """Voxels of a fine grid mapped to a coarser one: unique floor((c + 0.5) / source * grid).

    Args:
        coords: (N, 4) int (batch, x, y, z) on a ``source_grid``^3 grid.
        grid: the target grid size.

    Returns:
        (M, 4) int32, unique rows sorted lexicographically.
    """
    scaled = ((coords[:, 1:].float() + 0.5) / source_grid * grid).int()
    quantized = torch.cat([coords[:, :1].int(), scaled], dim=1)
    return torch.unique(quantized, dim=0).to(torch.int32)


def cascade_coords(
    coords: torch.Tensor,
    resolution: int,
    *,
    source_grid: int = 512,
    max_tokens: int = MAX_CASCADE_TOKENS,
) -> tuple[torch.Tensor, int]:
    """The high-resolution latent voxels of the cascade and the output resolution they give.

    Starting at ``resolution`` (1024 or 1536), the output resolution drops by 128 while the
    latent (resolution / 16)^3 grid holds ``max_tokens`` voxels or more; 1024 is always
    accepted, so a 1024 cascade never lowers it.

    Args:
        coords: (N, 4) voxels of the shape decoder's upsampling (``source_grid``^3).

    Returns:
        (T, 4) int32 latent voxels and the output resolution.
    """
    if resolution < 1024 or resolution % 128:
        raise ConfigError(
            f"cascade resolution must be 1024 or more, in steps of 128, got {resolution}"
        )
    while True:
        latent = quantize_coords(coords, source_grid, resolution // 16)
        if latent.shape[0] < max_tokens or resolution == 1024:
            return latent, resolution
        resolution -= 128
