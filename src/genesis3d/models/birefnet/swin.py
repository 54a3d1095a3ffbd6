"""Swin Transformer v1 backbone as BiRefNet uses it (the detection variant with padding).

Feature maps whose side is not a multiple of the window are padded with zeros after the
first norm of each block; the padded tokens take part in the attention as keys (as upstream
does: only the shifted-window mask is applied), and are cropped afterwards. Patch merging
pads odd sides. Each stage's output goes through its own LayerNorm (``norm0``..``norm3``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.models.birefnet.config import PATCH_SIZE, BiRefNetConfig
from genesis3d.models.birefnet.window_attention import (
    WindowAttention,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from genesis3d.nn.compute_dtype import Conv2d, Linear


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, each with a residual."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, x: torch.Tensor, height: int, width: int, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C); ``mask`` is the stage's shifted-window mask."""
        batch, _, channels = x.shape
        window = self.window
        shortcut = x
        x = self.norm1(x).reshape(batch, height, width, channels)
        pad_bottom = (window - height % window) % window
        pad_right = (window - width % window) % window
        x = F.pad(x, (0, 0, 0, pad_right, 0, pad_bottom))
        padded_h, padded_w = height + pad_bottom, width + pad_right
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, window).reshape(-1, window * window, channels)
        windows = self.attn(windows, mask if self.shift else None)
        x = window_reverse(
            windows.reshape(-1, window, window, channels), window, padded_h, padded_w
        )
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x[:, :height, :width, :].reshape(batch, height * width, channels)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhoods -> LayerNorm(4C) -> Linear(4C, 2C); odd sides are zero-padded."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C)."""
        batch, _, channels = x.shape
        x = x.reshape(batch, height, width, channels)
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        # Upstream's order: (even, even), (odd, even), (even, odd), (odd, odd) rows/columns.
        x = torch.cat(
            [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
        )
        return self.reduction(self.norm(x.reshape(batch, -1, 4 * channels)))


class SwinStage(nn.Module):
    """Blocks of one stage (even ones plain, odd ones shifted) and the merging that follows."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int,
        mlp_ratio: float,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, 0 if index % 2 == 0 else self.shift, mlp_ratio)
            for index in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, H*W, C) -> the stage output (B, H*W, C), before merging."""
        mask = None
        if self.shift:
            padded_h = -(-height // self.window) * self.window
            padded_w = -(-width // self.window) * self.window
            mask = shifted_window_mask(padded_h, padded_w, self.window, self.shift, device=x.device)
        for block in self.blocks:
            x = block(x, height, width, mask)
        return x


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (a strided conv) followed by a LayerNorm."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = Conv2d(3, embed_dim, PATCH_SIZE, PATCH_SIZE)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, ceil(H/4), ceil(W/4))."""
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % PATCH_SIZE, 0, -height % PATCH_SIZE))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SwinTransformer(nn.Module):
    """Swin v1 backbone returning the normed outputs of its four stages."""

    def __init__(self, config: BiRefNetConfig) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(config.embed_dim)
        channels = config.stage_channels
        self.layers = nn.ModuleList(
            SwinStage(
                channels[stage],
                config.depths[stage],
                config.num_heads[stage],
                config.window_size,
                config.mlp_ratio,
                downsample=stage < len(channels) - 1,
            )
            for stage in range(len(channels))
        )
        for stage, width in enumerate(channels):
            self.add_module(f"norm{stage}", nn.LayerNorm(width))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> four maps (B, C_i, H_i, W_i) at strides 4, 8, 16, 32 (rounded up)."""
        x = self.patch_embed(image)
        height, width = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        outputs = []
        for stage, layer in enumerate(self.layers):
            out = layer(x, height, width)
            normed = getattr(self, f"norm{stage}")(out)
            outputs.append(normed.reshape(-1, height, width, normed.shape[-1]).permute(0, 3, 1, 2))
            if layer.downsample is not None:
                x = layer.downsample(out, height, width)
                height, width = (height + 1) // 2, (width + 1) // 2
        return [o.contiguous() for o in outputs]
