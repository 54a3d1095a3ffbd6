"""BiRefNet (ZhengPeng7, MIT): bilateral-reference dichotomous segmentation, inference graph.

Encoder: the Swin backbone runs on the picture and again on a half-size copy (bilinear,
align_corners); each stage's two outputs are concatenated ("cat" multi-scale input), giving
x1..x4 at strides 4, 8, 16, 32. Stages 1-3 (``context_levels`` of them) are resized to x4's
size and concatenated before it, and a squeeze block (``squeeze_module.0``) maps the result
back to x4's width. The :class:`~genesis3d.models.birefnet.decoder.Decoder` turns the
features into one logit map at full resolution.

Module names mirror the official checkpoint (``bb.*``, ``squeeze_module.0.*``, ``decoder.*``),
so its state dict loads unchanged and strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.errors import InputError
from genesis3d.models.birefnet.config import BiRefNetConfig
from genesis3d.models.birefnet.decoder import BasicDecBlk, Decoder, resize
from genesis3d.models.birefnet.swin import SwinTransformer

#: Input sides must be multiples of this (the stride of the deepest stage).
SIZE_MULTIPLE = 32


class BiRefNet(nn.Module):
    """BiRefNet with the released wiring; sizes come from a :class:`BiRefNetConfig`."""

    def __init__(self, config: BiRefNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or BiRefNetConfig()
        channels = self.config.feature_channels
        self.bb = SwinTransformer(self.config)
        self.squeeze_module = nn.Sequential(
            BasicDecBlk(channels[-1] + self.config.context_channels, channels[-1], self.config)
        )
        self.decoder = Decoder(self.config)

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features x1..x4 of both backbone passes, concatenated per stage (x4 not squeezed)."""
        height, width = image.shape[-2:]
        full = self.bb(image)
        half = self.bb(resize(image, (height // 2, width // 2)))
        return [
            torch.cat([f, resize(h, f.shape[-2:])], dim=1) for f, h in zip(full, half, strict=True)
        ]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Segmentation logits of a batch of pictures.

        Args:
            image: (B, 3, H, W) ImageNet-normalised RGB; H and W multiples of 32.

        Returns:
            (B, 1, H, W) logits (apply a sigmoid for the matte).

        Raises:
            InputError: a tensor of another rank or channel count, or sides that are not
                multiples of 32.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"BiRefNet expects a (B, 3, H, W) tensor, got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height == 0 or width == 0:
            raise InputError(
                f"BiRefNet needs height and width that are positive multiples of {SIZE_MULTIPLE}, "
                f"got {height} x {width}; resize the picture first (predict_alpha does)"
            )
        x1, x2, x3, x4 = self.encode(image)
        levels = self.config.context_levels
        if levels:
            context = [resize(x, x4.shape[-2:]) for x in (x1, x2, x3)][-levels:]
            x4 = torch.cat([*context, x4], dim=1)
        x4 = self.squeeze_module(x4)
        return self.decoder(image, x1, x2, x3, x4)
