"""The modulated transformer block of the TRELLIS.2 flows, on packed token sequences.

The dense structure flow and the sparse latent flows share this block: tokens of all batch
items are packed as (T, C) rows with a layout of per-item row ranges (for the dense model
every item has R^3 rows), so one implementation serves both.

Math (per block, modulation vectors per batch item):
  h = LN(x) (1e-6, no affine) * (1 + scale_msa) + shift_msa; x += gate_msa * SelfAttn(h, RoPE)
  x += CrossAttn(norm2(x), cond)    (norm2 affine, 1e-6; no modulation, no gate)
  h = LN(x) * (1 + scale_mlp) + shift_mlp; x += gate_mlp * FFN(h)
with (shift, scale, gate) x 2 = chunk6(shared adaLN(t) + the block's ``modulation``).
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.nn.layers import FeedForward
from genesis3d.nn.norms import LayerNorm32, layer_norm_fp32
from genesis3d.nn.sparse.attention import SparseMultiHeadAttention


def per_token(values: torch.Tensor, layout: list[slice]) -> torch.Tensor:
    """(B, C) per-item vectors as rows broadcastable against the (T, C) packed tokens."""
    if len(layout) == 1:
        return values
    lengths = torch.tensor([rows.stop - rows.start for rows in layout], device=values.device)
    return torch.repeat_interleave(values, lengths, dim=0)


class _Broadcast:
    """Applies per-item vectors to packed tokens: by a (B, L, C) view when items are equal in
    length (the dense model; no copy of the vectors), else by repeating them per token."""

    def __init__(self, layout: list[slice]) -> None:
        self.layout = layout
        self.uniform = len({rows.stop - rows.start for rows in layout}) == 1

    def vector(self, values: torch.Tensor) -> torch.Tensor:
        return values[:, None, :] if self.uniform else per_token(values, self.layout)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(0, (len(self.layout), -1)) if self.uniform else x


class ModulatedCrossBlock(nn.Module):
    """Self-attention (RoPE), cross-attention to the image tokens, FFN; shared adaLN."""

    def __init__(
        self,
        channels: int,
        context_channels: int,
        heads: int,
        mlp_ratio: float,
        *,
        qk_rms_norm: bool,
        qk_rms_norm_cross: bool,
    ) -> None:
        super().__init__()
        self.norm2 = LayerNorm32(channels, eps=1e-6)
        self.self_attn = SparseMultiHeadAttention(
            channels, heads, kind="self", qk_rms_norm=qk_rms_norm
        )
        self.cross_attn = SparseMultiHeadAttention(
            channels,
            heads,
            kind="cross",
            context_channels=context_channels,
            qk_rms_norm=qk_rms_norm_cross,
        )
        self.mlp = FeedForward(channels, mlp_ratio)
        self.modulation = nn.Parameter(torch.zeros(6 * channels))

    def forward(
        self,
        x: torch.Tensor,
        layout: list[slice],
        t_mod: torch.Tensor,
        context: torch.Tensor,
        rotary: torch.Tensor,
    ) -> torch.Tensor:
        """x (T, C) packed; t_mod (B, 6C); context (B, Lc, Cc); rotary (T, D/2) -> (T, C)."""
        items = _Broadcast(layout)
        mods = (t_mod + self.modulation).to(x.dtype).chunk(6, dim=-1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = map(items.vector, mods)
        shape = x.shape
        h = items.tokens(layer_norm_fp32(x, 1e-6)) * (1 + scale_msa) + shift_msa
        attended = self.self_attn(h.reshape(shape), layout, rotary=rotary)
        x = (items.tokens(x) + gate_msa * items.tokens(attended)).reshape(shape)
        x = x + self.cross_attn(self.norm2(x), layout, context)
        h = items.tokens(layer_norm_fp32(x, 1e-6)) * (1 + scale_mlp) + shift_mlp
        return (items.tokens(x) + gate_mlp * self.mlp(h)).reshape(shape)
