"""Transformer building blocks shared by the families: MLP, modulation, attention layers.

Parameter names follow the official checkpoints (``mlp.mlp.0``, ``to_qkv``, ``to_q``,
``to_kv``, ``to_out``, ``q_rms_norm``, ``k_rms_norm``), so checkpoints load without a remap.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.norms import MultiHeadRMSNorm
from genesis3d.nn.rope import apply_interleaved_rotary


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift, with (B, C) modulation broadcast over tokens of x (B, L, C)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class FeedForward(nn.Module):
    """Linear -> GELU (tanh approximation) -> Linear, keys ``mlp.0`` and ``mlp.2``.

    Maps ``in_channels`` (default ``channels``) through ``hidden`` (default channels * ratio)
    to ``channels``.
    """

    def __init__(
        self,
        channels: int,
        ratio: float = 4.0,
        *,
        in_channels: int | None = None,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        hidden = hidden or int(channels * ratio)
        self.mlp = nn.Sequential(
            Linear(in_channels or channels, hidden),
            nn.GELU(approximate="tanh"),
            Linear(hidden, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class MultiHeadAttention(nn.Module):
    """Self or cross multi-head attention with optional per-head RMS norm of queries and keys.

    Self: ``to_qkv`` (C -> 3C). Cross: ``to_q`` (C -> C) and ``to_kv`` (context -> 2C).
    Then ``to_out``. Inputs (B, L, C) and, for cross, context (B, Lc, Cc). Optional rotary
    angles rotate interleaved channel pairs of queries and keys after the RMS norm.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        *,
        kind: Literal["self", "cross"] = "self",
        context_channels: int | None = None,
        qk_rms_norm: bool = True,
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.head_dim = channels // heads
        self.kind = kind
        if kind == "self":
            self.to_qkv = Linear(channels, channels * 3)
        else:
            self.to_q = Linear(channels, channels)
            self.to_kv = Linear(context_channels or channels, channels * 2)
        self.qk_rms_norm = qk_rms_norm
        if qk_rms_norm:
            self.q_rms_norm = MultiHeadRMSNorm(self.head_dim, heads)
            self.k_rms_norm = MultiHeadRMSNorm(self.head_dim, heads)
        self.to_out = Linear(channels, channels)

    def project(
        self, x: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (..., L, H, D), keys and values (..., Lk, H, D), RMS-normed where enabled.

        ``x`` is (..., L, C); ``context`` (..., Lc, Cc) for cross attention.
        """
        if self.kind == "self":
            query, key, value = self.to_qkv(x).unflatten(-1, (3, self.heads, -1)).unbind(-3)
        else:
            if context is None:
                raise ValueError("cross attention needs a context tensor")
            query = self.to_q(x).unflatten(-1, (self.heads, -1))
            key, value = self.to_kv(context).unflatten(-1, (2, self.heads, -1)).unbind(-3)
        if self.qk_rms_norm:
            query = self.q_rms_norm(query)
            key = self.k_rms_norm(key)
        return query, key, value

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        rotary: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, L, C), context (B, Lc, Cc), rotary angles (L, D/2) float32 -> (B, L, C)."""
        batch, length, _ = x.shape
        query, key, value = self.project(x, context)
        if rotary is not None:
            query = apply_interleaved_rotary(query, rotary[:, None, :])
            key = apply_interleaved_rotary(key, rotary[:, None, :])
        out = attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
        return self.to_out(out.transpose(1, 2).reshape(batch, length, -1))
