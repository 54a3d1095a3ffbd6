"""Swin v1 window attention: windows, the shifted-window mask and attention with a bias.

Attention with an additive bias (relative positions, plus the 0 / -inf shifted-window mask)
goes through :func:`biased_attention`, which calls ``scaled_dot_product_attention`` with
``attn_mask`` and, under ``attention_backend("reference")``, computes the softmax explicitly
in float32 instead (the test oracle of the fused path).
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.nn.attention import attention, reference_attention
from genesis3d.nn.compute_dtype import Linear


def biased_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(query key^T * scale + bias) value through :func:`genesis3d.nn.attention.attention`.

    Args:
        query: (B, H, Lq, D); key: (B, H, Lk, D); value: (B, H, Lk, Dv).
        bias: additive scores broadcastable to (B, H, Lq, Lk); -inf masks a pair.
        scale: multiplier of the scores; default 1/sqrt(D).

    Returns:
        (B, H, Lq, Dv) in the dtype of ``query``.
    """
    return attention(query, key, value, scale=scale, bias=bias)


def reference_biased_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """The explicit float32 twin of :func:`biased_attention` (same arguments and result)."""
    return reference_attention(query, key, value, scale=scale, bias=bias)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Cut a feature map into square windows.

    Args:
        x: (B, H, W, C) with H and W multiples of ``window``.

    Returns:
        (B * nW, window, window, C), windows in row-major order within each picture.
    """
    batch, height, width, channels = x.shape
    x = x.reshape(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window, window, C) -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.reshape(-1, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shifted_window_mask(
    height: int, width: int, window: int, shift: int, *, device: torch.device | None = None
) -> torch.Tensor:
    """The 0 / -inf mask of shifted-window attention on a padded (height, width) grid.

    After the cyclic shift by ``shift``, the last ``window`` rows split into the rows that
    were there (``window - shift`` of them) and the rows that wrapped round from the top;
    the same holds for columns. Tokens of different regions must not attend to each other.

    Returns:
        (nW, window**2, window**2) float32: 0 within a region, -inf across regions.
    """

    def regions(size: int) -> torch.Tensor:
        index = torch.arange(size, device=device)
        return (index >= size - window).long() + (index >= size - shift).long()

    label = regions(height)[:, None] * 3 + regions(width)[None, :]
    windows = window_partition(label[None, :, :, None], window).reshape(-1, window * window)
    different = windows[:, None, :] != windows[:, :, None]
    zeros = torch.zeros(different.shape, dtype=torch.float32, device=device)
    return zeros.masked_fill(different, float("-inf"))


def relative_position_index(window: int) -> torch.Tensor:
    """(window**2, window**2) int64 index of each token pair's relative offset in the bias table.

    Pair (p, q) of a window with p = (y1, x1), q = (y2, x2) maps to
    ``(y1 - y2 + window - 1) * (2 * window - 1) + (x1 - x2 + window - 1)``.
    """
    # Always on the CPU: the values are real even when the module is built on the meta device.
    token = torch.arange(window * window, device="cpu")
    rows, cols = token // window, token % window
    relative_rows = rows[:, None] - rows[None, :] + (window - 1)
    relative_cols = cols[:, None] - cols[None, :] + (window - 1)
    return relative_rows * (2 * window - 1) + relative_cols


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative-position bias."""

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        index = relative_position_index(window)
        if self.relative_position_bias_table.device.type != "meta":
            index = index.to(self.relative_position_bias_table.device)
        # Persistent: the official checkpoint stores it.
        self.register_buffer("relative_position_index", index)
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend within each window.

        Args:
            x: (B * nW, N, C) tokens of the windows, N = window**2.
            mask: (nW, N, N) 0 / -inf shifted-window mask, or None.

        Returns:
            (B * nW, N, C).
        """
        windows, tokens, channels = x.shape
        head_dim = channels // self.num_heads
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.num_heads, head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*nW, heads, N, D)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = bias.reshape(tokens, tokens, self.num_heads).permute(2, 0, 1).unsqueeze(0)
        bias = bias.to(query.dtype)
        if mask is not None:
            per_window = bias + mask.to(query.dtype).unsqueeze(1)  # (nW, heads, N, N)
            repeats = windows // mask.shape[0]
            bias = per_window if repeats == 1 else per_window.repeat(repeats, 1, 1, 1)
        out = biased_attention(query, key, value, bias)
        return self.proj(out.transpose(1, 2).reshape(windows, tokens, channels))
