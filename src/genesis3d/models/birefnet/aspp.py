"""Deformable ASPP: parallel deformable-conv branches plus a global-pooling branch.

Every branch is conv -> BatchNorm -> ReLU; the branches are concatenated and fused by a 1x1
conv -> BatchNorm -> ReLU (then dropout 0.5, which is the identity at inference).
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.models.birefnet.deform_conv import DeformableConv2d
from genesis3d.nn.compute_dtype import Conv2d


class DeformableBranch(nn.Module):
    """One ASPP branch: deformable conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.atrous_conv = DeformableConv2d(
            in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    """Deformable atrous spatial pyramid pooling; keeps the channel count of its input.

    Branches: ``aspp1`` (1x1), ``aspp_deforms`` (one per kernel size) and
    ``global_avg_pool`` (mean over the picture, 1x1 conv, BatchNorm, ReLU, broadcast back).
    """

    def __init__(
        self, in_channels: int, branch_channels: int, kernel_sizes: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.aspp1 = DeformableBranch(in_channels, branch_channels, 1)
        self.aspp_deforms = nn.ModuleList(
            DeformableBranch(in_channels, branch_channels, size) for size in kernel_sizes
        )
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            Conv2d(in_channels, branch_channels, 1, bias=False),
            nn.BatchNorm2d(branch_channels),
            nn.ReLU(),
        )
        self.conv1 = Conv2d(branch_channels * (2 + len(kernel_sizes)), in_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        branches = [self.aspp1(x), *(branch(x) for branch in self.aspp_deforms)]
        # Upstream upsamples the 1x1 pooled map bilinearly with align_corners: a broadcast.
        pooled = self.global_avg_pool(x).expand(-1, -1, *branches[0].shape[-2:])
        x = torch.cat([*branches, pooled], dim=1)
        return self.dropout(torch.relu(self.bn1(self.conv1(x))))
