"""BiRefNet's decoder: four decoder blocks from stride 32 up to stride 4, with lateral 1x1
convs, image-patch input blocks and the gradient-attention gates, then a 1x1 output conv.

Image-patch input ("dec_ipt_split"): before the block at stride s the picture is cut into an
s x s grid of contiguous tiles, the tiles are stacked on the channel axis (3 * s**2 channels,
channel index ``c * s**2 + row * s + column``), and a two-conv block maps them to a few
channels that are concatenated onto the features. At inference the gradient branch gates
each of blocks 4, 3 and 2 by sigmoid(conv(conv-BN-ReLU(features))); the heads ``conv_ms_spvn_*``
and ``gdt_convs_pred_*`` produce training targets only and are kept for the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.models.birefnet.aspp import ASPPDeformable
from genesis3d.models.birefnet.config import PATCH_SIZE, BiRefNetConfig
from genesis3d.nn.compute_dtype import Conv2d

#: Strides of the image-patch input blocks ``ipt_blk5``..``ipt_blk1``.
INPUT_BLOCK_STRIDES = (8 * PATCH_SIZE, 4 * PATCH_SIZE, 2 * PATCH_SIZE, PATCH_SIZE, 1)


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True``, the only resize BiRefNet uses."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def image_to_patches(image: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Stack the tiles of an (H/h) x (W/w) grid on the channel axis.

    Args:
        image: (B, C, H, W), H and W multiples of the tile size.
        size: (h, w) tile size.

    Returns:
        (B, C * gh * gw, h, w) with gh = H // h, gw = W // w; channel ``c * gh * gw +
        row * gw + column`` holds the tile at (row, column) of channel c.
    """
    batch, channels, height, width = image.shape
    grid_h, grid_w = height // size[0], width // size[1]
    tiles = image.reshape(batch, channels, grid_h, height // grid_h, grid_w, width // grid_w)
    tiles = tiles.permute(0, 1, 2, 4, 3, 5)
    return tiles.reshape(batch, channels * grid_h * grid_w, height // grid_h, width // grid_w)


class BasicDecBlk(nn.Module):
    """conv3x3 -> BN -> ReLU -> deformable ASPP -> conv3x3 -> BN (no final activation)."""

    def __init__(self, in_channels: int, out_channels: int, config: BiRefNetConfig) -> None:
        super().__init__()
        inner = config.decoder_channels
        self.conv_in = Conv2d(in_channels, inner, 3, 1, padding=1)
        self.bn_in = nn.BatchNorm2d(inner)
        self.dec_att = ASPPDeformable(inner, config.aspp_channels, config.aspp_kernel_sizes)
        self.conv_out = Conv2d(inner, out_channels, 3, 1, padding=1)
        self.bn_out = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_in(self.conv_in(x)))
        return self.bn_out(self.conv_out(self.dec_att(x)))


class BasicLatBlk(nn.Module):
    """Lateral 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SimpleConvs(nn.Module):
    """Two 3x3 convs without an activation between them (the image-patch input block)."""

    def __init__(self, in_channels: int, out_channels: int, inner: int) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, inner, 3, 1, 1)
        self.conv_out = Conv2d(inner, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv1(x))


def _gradient_convs(in_channels: int, channels: int) -> nn.Sequential:
    return nn.Sequential(
        Conv2d(in_channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU()
    )


class Decoder(nn.Module):
    """The decoder of BiRefNet; module names mirror the official checkpoint."""

    def __init__(self, config: BiRefNetConfig) -> None:
        super().__init__()
        channels = config.feature_channels[::-1]  # x4, x3, x2, x1
        inputs = [channels[i] // 8 for i in range(4)]  # image-patch block outputs
        outs = [*channels[1:], channels[-1] // 2]
        ins = [channels[i] + inputs[max(0, i - 1)] for i in range(4)]
        inner = config.input_block_channels
        tile_in = [3 * stride**2 for stride in INPUT_BLOCK_STRIDES]
        self.ipt_blk5 = SimpleConvs(tile_in[0], inputs[0], inner)
        self.ipt_blk4 = SimpleConvs(tile_in[1], inputs[0], inner)
        self.ipt_blk3 = SimpleConvs(tile_in[2], inputs[1], inner)
        self.ipt_blk2 = SimpleConvs(tile_in[3], inputs[2], inner)
        self.ipt_blk1 = SimpleConvs(tile_in[4], inputs[3], inner)

        self.decoder_block4 = BasicDecBlk(ins[0], outs[0], config)
        self.decoder_block3 = BasicDecBlk(ins[1], outs[1], config)
        self.decoder_block2 = BasicDecBlk(ins[2], outs[2], config)
        self.decoder_block1 = BasicDecBlk(ins[3], outs[3], config)
        self.conv_out1 = nn.Sequential(Conv2d(outs[3] + inputs[3], 1, 1, 1, 0))

        self.lateral_block4 = BasicLatBlk(channels[1], outs[0])
        self.lateral_block3 = BasicLatBlk(channels[2], outs[1])
        self.lateral_block2 = BasicLatBlk(channels[3], outs[2])

        # Multi-scale supervision heads: used in training only.
        self.conv_ms_spvn_4 = Conv2d(outs[0], 1, 1, 1, 0)
        self.conv_ms_spvn_3 = Conv2d(outs[1], 1, 1, 1, 0)
        self.conv_ms_spvn_2 = Conv2d(outs[2], 1, 1, 1, 0)

        gdt = config.gradient_channels
        self.gdt_convs_4 = _gradient_convs(outs[0], gdt)
        self.gdt_convs_3 = _gradient_convs(outs[1], gdt)
        self.gdt_convs_2 = _gradient_convs(outs[2], gdt)
        # Gradient predictions: used in training only.
        self.gdt_convs_pred_4 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))
        self.gdt_convs_pred_3 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))
        self.gdt_convs_pred_2 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))
        self.gdt_convs_attn_4 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))
        self.gdt_convs_attn_3 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))
        self.gdt_convs_attn_2 = nn.Sequential(Conv2d(gdt, 1, 1, 1, 0))

    @staticmethod
    def _with_tiles(features: torch.Tensor, image: torch.Tensor, block: nn.Module) -> torch.Tensor:
        size = features.shape[-2:]
        tiles = resize(image_to_patches(image, size), size)
        return torch.cat([features, block(tiles)], dim=1)

    @staticmethod
    def _gate(features: torch.Tensor, convs: nn.Module, attention: nn.Module) -> torch.Tensor:
        return features * torch.sigmoid(attention(convs(features)))

    def forward(
        self,
        image: torch.Tensor,
        x1: torch.Tensor,
        x2: torch.Tensor,
        x3: torch.Tensor,
        x4: torch.Tensor,
    ) -> torch.Tensor:
        """Decode the (squeezed) encoder features into logits.

        Args:
            image: (B, 3, H, W) normalised picture.
            x1, x2, x3, x4: features at strides 4, 8, 16, 32; x4 after the squeeze block.

        Returns:
            (B, 1, H, W) logits.
        """
        p4 = self.decoder_block4(self._with_tiles(x4, image, self.ipt_blk5))
        p4 = self._gate(p4, self.gdt_convs_4, self.gdt_convs_attn_4)

        p3 = resize(p4, x3.shape[-2:]) + self.lateral_block4(x3)
        p3 = self.decoder_block3(self._with_tiles(p3, image, self.ipt_blk4))
        p3 = self._gate(p3, self.gdt_convs_3, self.gdt_convs_attn_3)

        p2 = resize(p3, x2.shape[-2:]) + self.lateral_block3(x2)
        p2 = self.decoder_block2(self._with_tiles(p2, image, self.ipt_blk3))
        p2 = self._gate(p2, self.gdt_convs_2, self.gdt_convs_attn_2)

        p1 = resize(p2, x1.shape[-2:]) + self.lateral_block2(x1)
        p1 = self.decoder_block1(self._with_tiles(p1, image, self.ipt_blk2))
        p1 = resize(p1, image.shape[-2:])
        return self.conv_out1(self._with_tiles(p1, image, self.ipt_blk1))
