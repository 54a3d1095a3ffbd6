"""``SparseStructureDecoder``: the dense 3-D convolutional decoder of the occupancy latent.

It maps the (B, 8, 16, 16, 16) structure latent to (B, 1, 64, 64, 64) occupancy logits
(occupied where > 0). The class comes from TRELLIS v1 and is unchanged in TRELLIS.2.
Parameter names equal the official checkpoint's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.models.trellis2.config import StructureDecoderConfig
from genesis3d.nn.compute_dtype import Conv3d
from genesis3d.nn.norms import layer_norm_fp32


class ChannelLayerNorm32(nn.LayerNorm):
    """LayerNorm over the channel axis of (B, C, X, Y, Z), in float32 (eps 1e-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        moved = x.movedim(1, -1)
        return layer_norm_fp32(moved, self.eps, self.weight, self.bias).movedim(-1, 1)


def _conv(in_channels: int, out_channels: int) -> nn.Conv3d:
    return Conv3d(in_channels, out_channels, 3, padding=1)


class ResBlock3d(nn.Module):
    """x + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm32(channels, eps=1e-5)
        self.norm2 = ChannelLayerNorm32(channels, eps=1e-5)
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x).to(x.dtype)))
        h = self.conv2(F.silu(self.norm2(h).to(x.dtype)))
        return x + h


class UpsampleBlock3d(nn.Module):
    """Conv to 8 Co channels, then a 3-D pixel shuffle (x offset is the most significant bit).

    out[c, 2h+i, 2w+j, 2d+k] = in[8c + 4i + 2j + k, h, w, d].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels * 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        batch, channels, *size = h.shape
        h = h.reshape(batch, channels // 8, 2, 2, 2, *size)
        h = h.permute(0, 1, 5, 2, 6, 3, 7, 4)
        return h.reshape(batch, channels // 8, *(2 * n for n in size))


class SparseStructureDecoder(nn.Module):
    """Occupancy logits from the structure latent; see the module docstring."""

    def __init__(self, config: StructureDecoderConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.channels
        self.input_layer = _conv(config.latent_channels, channels[0])
        self.middle_block = nn.Sequential(
            *(ResBlock3d(channels[0]) for _ in range(config.num_res_blocks_middle))
        )
        blocks: list[nn.Module] = []
        for index, width in enumerate(channels):
            blocks.extend(ResBlock3d(width) for _ in range(config.num_res_blocks))
            if index < len(channels) - 1:
                blocks.append(UpsampleBlock3d(width, channels[index + 1]))
        self.blocks = nn.ModuleList(blocks)
        self.out_layer = nn.Sequential(
            ChannelLayerNorm32(channels[-1], eps=1e-5),
            nn.SiLU(),
            _conv(channels[-1], config.out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, latent, R, R, R) -> logits (B, out, 4R, 4R, 4R) in x's dtype.

        The input and output layers run in their own dtype, the blocks in theirs.
        """
        h = self.input_layer(x.to(self.input_layer.weight.dtype))
        block_dtype = self.blocks[0].conv1.weight.dtype if self.blocks else h.dtype
        h = self.middle_block(h.to(block_dtype))
        for block in self.blocks:
            h = block(h)
        h = h.to(self.out_layer[2].weight.dtype)
        return self.out_layer(h).to(x.dtype)
