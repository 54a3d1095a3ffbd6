"""TripoSplat's image encoders in the naming of their released files.

* DINOv3 ViT (Hugging Face ``DINOv3ViTModel`` keys: ``embeddings.*``, ``layer.N.*``,
  ``norm.*``): register tokens, LayerScale, 2-D RoPE (rotate-half, base 100) on patch tokens
  only, SwiGLU (ViT-H/16+) or GELU (ViT-L/16) MLP. Its last hidden state after the final norm,
  LayerNorm'd again without affine, is ``feature1``.
* FLUX.2 VAE encoder (diffusers ``AutoencoderKLFlux2`` keys: ``encoder.*``, ``quant_conv.*``,
  ``bn.*``): its seeded posterior sample, 2x2-patchified and normalised by the BatchNorm
  running statistics, is ``feature2`` after 5 leading zero tokens.

Sizes are read off the file header (see :mod:`genesis3d.models.triposplat.checkpoint`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import ConfigError, WeightsError
from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Conv2d, Linear
from genesis3d.nn.norms import layer_norm_fp32
from genesis3d.nn.rope import apply_half_rotary

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREFIX_TOKENS = 5  # cls + 4 registers; also the zero tokens in front of feature2


def _count(keys: Any, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for key in keys if (m := pattern.match(key))}
    return max(found) + 1 if found else 0


def _need(header: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    if key not in header:
        raise WeightsError(f"{source} lacks {key}; it is not a file of the expected layout")
    return tuple(header[key].shape)


# --------------------------------------------------------------------------- DINOv3


@dataclass(frozen=True)
class DINOv3Config:
    """DINOv3 ViT sizes. Defaults: ViT-H/16+ (TripoSplat)."""

    hidden_size: int = 1280
    num_layers: int = 32
    head_dim: int = 64
    intermediate_size: int = 5120
    patch_size: int = 16
    num_register_tokens: int = 4
    gated_mlp: bool = True
    rope_theta: float = 100.0
    layer_norm_eps: float = 1e-5

    @property
    def heads(self) -> int:
        return self.hidden_size // self.head_dim


class DINOv3Attention(nn.Module):
    def __init__(self, config: DINOv3Config) -> None:
        super().__init__()
        c = config.hidden_size
        self.heads = config.heads
        self.q_proj = Linear(c, c)
        self.k_proj = Linear(c, c, bias=False)
        self.v_proj = Linear(c, c)
        self.o_proj = Linear(c, c)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, prefix: int
    ) -> torch.Tensor:
        batch, length, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, -1).transpose(1, 2)

        query, key, value = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        query = torch.cat(
            [query[:, :, :prefix], apply_half_rotary(query[:, :, prefix:], cos, sin)], dim=2
        )
        key = torch.cat(
            [key[:, :, :prefix], apply_half_rotary(key[:, :, prefix:], cos, sin)], dim=2
        )
        out = attention(query, key, value)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class DINOv3MLP(nn.Module):
    def __init__(self, config: DINOv3Config) -> None:
        super().__init__()
        c, hidden = config.hidden_size, config.intermediate_size
        self.gated = config.gated_mlp
        if self.gated:
            self.gate_proj = Linear(c, hidden)
        self.up_proj = Linear(c, hidden)
        self.down_proj = Linear(hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(F.gelu(self.up_proj(x)))


class LayerScale(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class DINOv3Layer(nn.Module):
    def __init__(self, config: DINOv3Config) -> None:
        super().__init__()
        c = config.hidden_size
        self.norm1 = nn.LayerNorm(c, eps=config.layer_norm_eps)
        self.attention = DINOv3Attention(config)
        self.layer_scale1 = LayerScale(c)
        self.norm2 = nn.LayerNorm(c, eps=config.layer_norm_eps)
        self.mlp = DINOv3MLP(config)
        self.layer_scale2 = LayerScale(c)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, prefix: int
    ) -> torch.Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x), cos, sin, prefix))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class DINOv3Embeddings(nn.Module):
    def __init__(self, config: DINOv3Config) -> None:
        super().__init__()
        c = config.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, c))
        self.patch_embeddings = Conv2d(3, c, config.patch_size, stride=config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(pixels).flatten(2).transpose(1, 2)
        batch = pixels.shape[0]
        prefix = [self.cls_token.expand(batch, -1, -1), self.register_tokens.expand(batch, -1, -1)]
        return torch.cat([*prefix, patches], dim=1)


class DINOv3ViT(nn.Module):
    """DINOv3 ViT; :meth:`forward` returns the last hidden state after the final norm."""

    def __init__(self, config: DINOv3Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = DINOv3Embeddings(config)
        self.layer = nn.ModuleList(DINOv3Layer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def rope(self, rows: int, cols: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (rows*cols, head_dim) float32 of the patch grid (rotate-half layout)."""
        quarter = self.config.head_dim // 4
        inv_freq = 1 / self.config.rope_theta ** (
            torch.arange(quarter, dtype=torch.float32, device=device) / quarter
        )
        u = 2 * (torch.arange(rows, dtype=torch.float32, device=device) + 0.5) / rows - 1
        v = 2 * (torch.arange(cols, dtype=torch.float32, device=device) + 0.5) / cols - 1
        coords = torch.stack(torch.meshgrid(u, v, indexing="ij"), dim=-1).reshape(-1, 2)
        angles = (2 * math.pi * coords[:, :, None] * inv_freq).flatten(1)
        angles = angles.tile(1, 2)
        return torch.cos(angles), torch.sin(angles)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, 3, H, W) ImageNet-normalised -> (B, 1 + R + (H/16)(W/16), C)."""
        patch = self.config.patch_size
        rows, cols = pixels.shape[2] // patch, pixels.shape[3] // patch
        x = self.embeddings(pixels.to(self.embeddings.patch_embeddings.weight.dtype))
        cos, sin = self.rope(rows, cols, pixels.device)
        prefix = 1 + self.config.num_register_tokens
        for layer in self.layer:
            x = layer(x, cos, sin, prefix)
        return self.norm(x)


def build_dinov3(header: Mapping[str, Any], source: str) -> DINOv3ViT:
    hidden = _need(header, "embeddings.cls_token", source)[-1]
    gated = "layer.0.mlp.gate_proj.weight" in header
    config = DINOv3Config(
        hidden_size=hidden,
        num_layers=_count(header, "layer."),
        intermediate_size=_need(header, "layer.0.mlp.up_proj.weight", source)[0],
        patch_size=_need(header, "embeddings.patch_embeddings.weight", source)[-1],
        num_register_tokens=_need(header, "embeddings.register_tokens", source)[1],
        gated_mlp=gated,
    )
    return DINOv3ViT(config)


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
    blocks = _count(header, "encoder.down_blocks.")
    channels = tuple(
        _need(header, f"encoder.down_blocks.{i}.resnets.0.conv1.weight", source)[0]
        for i in range(blocks)
    )
    layers = _count(header, "encoder.down_blocks.0.resnets.")
    latent = _need(header, "encoder.conv_out.weight", source)[0] // 2
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
