"""DINOv3 ViT in the naming of Hugging Face ``DINOv3ViTModel`` files.

Keys ``embeddings.*``, ``layer.N.*``, ``norm.*``: a class token and register tokens,
LayerScale, 2-D RoPE (rotate-half, base 100) on the patch tokens only (patch-centre
coordinates in [-1, 1] from the actual grid), and a SwiGLU (ViT-H/16+) or GELU (ViT-L/16)
MLP. TripoSplat conditions on the last hidden state after the final norm; TRELLIS.2 on the
last layer's output without it (:meth:`DINOv3ViT.hidden_states`). Both then apply a
non-affine LayerNorm. Sizes are read off the file header (:func:`build_dinov3`).

Precision: the patch embedding and the linear layers compute through
:mod:`genesis3d.nn.compute_dtype`; the LayerNorms run in their parameters' dtype; RoPE
angles are float32.
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

from genesis3d.errors import WeightsError
from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Conv2d, Linear
from genesis3d.nn.rope import apply_half_rotary

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def count_indexed(keys: Any, prefix: str) -> int:
    """Number of ``prefix{N}.`` entries among ``keys`` (max N + 1; 0 if none)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for key in keys if (m := pattern.match(key))}
    return max(found) + 1 if found else 0


def header_shape(header: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    """Shape of ``key`` in a safetensors header; WeightsError naming the file if it lacks it."""
    if key not in header:
        raise WeightsError(f"{source} lacks {key}; it is not a file of the expected layout")
    return tuple(header[key].shape)


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

    def hidden_states(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last layer's output, before the final norm.

        Args:
            pixels: (B, 3, H, W) ImageNet-normalised, H and W multiples of the patch size.

        Returns:
            (B, 1 + registers + (H/16)(W/16), C): class token, registers, then the patches
            row by row.
        """
        patch = self.config.patch_size
        if (
            pixels.dim() != 4
            or pixels.shape[1] != 3
            or pixels.shape[2] % patch
            or pixels.shape[3] % patch
        ):
            raise ValueError(
                f"DINOv3 takes (B, 3, H, W) pixels with H and W multiples of {patch}, got {tuple(pixels.shape)}"
            )
        rows, cols = pixels.shape[2] // patch, pixels.shape[3] // patch
        x = self.embeddings(pixels.to(self.embeddings.patch_embeddings.weight.dtype))
        cos, sin = self.rope(rows, cols, pixels.device)
        prefix = 1 + self.config.num_register_tokens
        for layer in self.layer:
            x = layer(x, cos, sin, prefix)
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, 3, H, W) ImageNet-normalised -> (B, 1 + R + (H/16)(W/16), C) after the final norm."""
        return self.norm(self.hidden_states(pixels))


def build_dinov3(header: Mapping[str, Any], source: str) -> DINOv3ViT:
    hidden = header_shape(header, "embeddings.cls_token", source)[-1]
    gated = "layer.0.mlp.gate_proj.weight" in header
    config = DINOv3Config(
        hidden_size=hidden,
        num_layers=count_indexed(header, "layer."),
        intermediate_size=header_shape(header, "layer.0.mlp.up_proj.weight", source)[0],
        patch_size=header_shape(header, "embeddings.patch_embeddings.weight", source)[-1],
        num_register_tokens=header_shape(header, "embeddings.register_tokens", source)[1],
        gated_mlp=gated,
    )
    return DINOv3ViT(config)
