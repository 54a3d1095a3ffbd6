"""TripoSplat's image encoders in the naming of their released files.

* DINOv3 ViT-H/16+ (:mod:`genesis3d.nn.dinov3`, shared with TRELLIS.2): its last hidden
  state after the final norm, LayerNorm'd again without affine, is ``feature1``.
* FLUX.2 VAE encoder (diffusers ``AutoencoderKLFlux2`` keys: ``encoder.*``, ``quant_conv.*``,
  ``bn.*``): its seeded posterior sample, 2x2-patchified and normalised by the BatchNorm
  running statistics, is ``feature2`` after 5 leading zero tokens.

Sizes are read off the file header (see :mod:`genesis3d.models.triposplat.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import ConfigError
from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Conv2d, Linear
from genesis3d.nn.dinov3 import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DINOv3ViT,
    build_dinov3,
    count_indexed,
    header_shape,
)
from genesis3d.nn.norms import layer_norm_fp32

__all__ = ["build_dinov3", "build_flux2_vae_encoder", "encode_feature1", "encode_feature2"]

PREFIX_TOKENS = 5  # cls + 4 registers; also the zero tokens in front of feature2


def encode_feature1(dino: DINOv3ViT, pixels: torch.Tensor) -> torch.Tensor:
    """feature1: (B, 3, S, S) in [0, 1] -> (B, 5 + (S/16)^2, C) float32 (spec 2.2)."""
    mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pixels.device).view(1, 3, 1, 1)
    hidden = dino((pixels.float() - mean) / std)
    return layer_norm_fp32(hidden.float(), 1e-5)


# --------------------------------------------------------------------------- FLUX.2 VAE


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int = 32) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=1e-6)
        self.conv1 = Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=1e-6)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.conv_shortcut = Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place SiLU and sum on fresh intermediates: at 1024 px a 128-channel float32
        # map is 512 MB, and each avoided copy is one less of them alive at the peak.
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = self.conv2(F.silu(self.norm2(h), inplace=True))
        if hasattr(self, "conv_shortcut"):
            return h.add_(self.conv_shortcut(x))
        return h.add_(x)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class DownBlock(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, layers: int, downsample: bool, groups: int = 32
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups)
            for i in range(layers)
        )
        if downsample:
            self.downsamplers = nn.ModuleList([Downsample(out_channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        if hasattr(self, "downsamplers"):
            x = self.downsamplers[0](x)
        return x


class SpatialSelfAttention(nn.Module):
    """Single-head self-attention over all pixels (GroupNorm pre-norm, residual)."""

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.to_q = Linear(channels, channels)
        self.to_k = Linear(channels, channels)
        self.to_v = Linear(channels, channels)
        self.to_out = nn.ModuleList([Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = self.group_norm(x).flatten(2).transpose(1, 2)
        query, key, value = (proj(h).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))
        out = self.to_out[0](attention(query, key, value).squeeze(1))
        return x + out.transpose(1, 2).reshape(batch, channels, height, width)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock(channels, channels, groups), ResnetBlock(channels, channels, groups)]
        )
        self.attentions = nn.ModuleList([SpatialSelfAttention(channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        x = self.attentions[0](x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    def __init__(
        self, channels: tuple[int, ...], layers: int, latent_channels: int, groups: int = 32
    ) -> None:
        super().__init__()
        self.conv_in = Conv2d(3, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock(channels[max(i - 1, 0)], c, layers, i < len(channels) - 1, groups)
            for i, c in enumerate(channels)
        )
        self.mid_block = MidBlock(channels[-1], groups)
        self.conv_norm_out = nn.GroupNorm(groups, channels[-1], eps=1e-6)
        self.conv_out = Conv2d(channels[-1], 2 * latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class LatentStatistics(nn.Module):
    """The ``bn`` buffers: running statistics of the patchified latent (no affine)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))


class Flux2VAEEncoder(nn.Module):
    """FLUX.2 VAE encoder, ``quant_conv`` and latent statistics.

    ``norm_groups`` is diffusers' ``norm_num_groups`` (32 in the released VAE). GroupNorm
    weights are per channel, so it cannot be read off a file.
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (128, 256, 512, 512),
        layers: int = 2,
        latent_channels: int = 32,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.encoder = Encoder(channels, layers, latent_channels, norm_groups)
        self.quant_conv = Conv2d(2 * latent_channels, 2 * latent_channels, 1)
        self.bn = LatentStatistics(4 * latent_channels)

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1] -> (B, 2 * latent, H/8, W/8) mean and log-variance."""
        return self.quant_conv(self.encoder(x.to(self.quant_conv.weight.dtype)))


def build_flux2_vae_encoder(
    header: Mapping[str, Any], source: str, *, norm_groups: int = 32
) -> Flux2VAEEncoder:
    blocks = count_indexed(header, "encoder.down_blocks.")
    channels = tuple(
        header_shape(header, f"encoder.down_blocks.{i}.resnets.0.conv1.weight", source)[0]
        for i in range(blocks)
    )
    layers = count_indexed(header, "encoder.down_blocks.0.resnets.")
    latent = header_shape(header, "encoder.conv_out.weight", source)[0] // 2
    if any(c % norm_groups for c in channels):
        raise ConfigError(
            f"{source}: GroupNorm with {norm_groups} groups does not divide the channels {channels}"
        )
    return Flux2VAEEncoder(channels, layers, latent, norm_groups)


def patchify(z: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, 4C, h/2, w/2) with channel 4c + 2dy + dx."""
    batch, channels, height, width = z.shape
    z = z.view(batch, channels, height // 2, 2, width // 2, 2)
    return z.permute(0, 1, 3, 5, 2, 4).reshape(batch, channels * 4, height // 2, width // 2)


def encode_feature2(
    vae: Flux2VAEEncoder, pixels: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """feature2: (B, 3, S, S) in [0, 1] -> (B, 5 + (S/16)^2, 4 * latent) float32 (spec 2.3).

    The posterior is sampled (z = mean + exp(logvar / 2) eps, eps from ``generator`` in the
    VAE's dtype), as upstream does.
    """
    moments = vae.moments(2 * pixels - 1)
    mean, logvar = moments.chunk(2, dim=1)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    z = patchify(mean + torch.exp(0.5 * logvar) * noise).float()
    stats = vae.bn
    z = (z - stats.running_mean.float().view(1, -1, 1, 1)) / torch.sqrt(
        stats.running_var.float().view(1, -1, 1, 1) + 1e-5
    )
    tokens = z.flatten(2).transpose(1, 2)
    zeros = tokens.new_zeros(tokens.shape[0], PREFIX_TOKENS, tokens.shape[2])
    return torch.cat([zeros, tokens], dim=1)
