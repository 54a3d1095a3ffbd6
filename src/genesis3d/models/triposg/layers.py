"""The transformer block of TripoSG's DiT and VAE, with the checkpoint's parameter names.

Names follow the official diffusers modules: ``attn1`` / ``attn2`` hold ``to_q``, ``to_k``,
``to_v`` (no bias), ``to_out.0`` and, where used, ``norm_q`` / ``norm_k`` (RMSNorm over the
head dim) and ``norm_cross`` (LayerNorm of the key/value input); ``ff.net.0.proj`` and
``ff.net.2`` are the feed-forward layers.

Head layout (spec 2.4, the trap that breaks parity silently): the released weights were
trained with the heads split *before* q/k/v. For self-attention the three projections are
concatenated to (L, 3C) and viewed as (L, H, 3d): head h takes its query, key and value from
columns [3dh, 3dh + d), [3dh + d, 3dh + 2d), [3dh + 2d, 3dh + 3d). For cross-attention the
query splits normally and key/value are concatenated to (S, 2C) viewed as (S, H, 2d).
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.norms import LayerNorm32


class HeadRMSNorm(nn.Module):
    """RMSNorm over the last (head) dimension with a learned ``weight``, computed in float32.

    x / sqrt(mean(x^2) + eps) * weight; input (..., d), output in the input dtype.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


class TripoSGAttention(nn.Module):
    """Self- or cross-attention with the interleaved head layout of the released weights.

    Args:
        dim: query (and output) width.
        heads: attention heads; head dim = dim / heads.
        context_dim: key/value input width for cross-attention, None for self-attention.
        qk_norm: RMSNorm of queries and keys per head (the DiT; not the VAE).
        norm_cross: LayerNorm of the key/value input (the VAE's cross-attention blocks).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        context_dim: int | None = None,
        qk_norm: bool = False,
        norm_cross: bool = False,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.is_cross = context_dim is not None
        kv_dim = context_dim if context_dim is not None else dim
        if norm_cross:
            self.norm_cross = nn.LayerNorm(kv_dim)
        self.has_norm_cross = norm_cross
        self.to_q = Linear(dim, dim, bias=False)
        self.to_k = Linear(kv_dim, dim, bias=False)
        self.to_v = Linear(kv_dim, dim, bias=False)
        if qk_norm:
            self.norm_q = HeadRMSNorm(self.head_dim)
            self.norm_k = HeadRMSNorm(self.head_dim)
        self.qk_norm = qk_norm
        self.to_out = nn.ModuleList([Linear(dim, dim)])

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of a cross-attention context, split per head.

        Args:
            context: (B, S, context_dim).

        Returns:
            key, value: (B, H, S, d) each (key already RMS-normed where the layer norms keys).
        """
        if self.has_norm_cross:
            context = self.norm_cross(context)
        batch, length, _ = context.shape
        packed = torch.cat([self.to_k(context), self.to_v(context)], dim=-1)
        key, value = packed.view(batch, length, self.heads, 2 * self.head_dim).split(
            self.head_dim, dim=-1
        )
        if self.qk_norm:
            key = self.norm_k(key)
        return key.transpose(1, 2), value.transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Attend.

        Args:
            x: (B, L, dim) queries (and keys/values for self-attention).
            context: (B, S, context_dim) for cross-attention.
            key_value: precomputed :meth:`key_value` of the context (cross-attention only),
                so a context queried many times is projected once.

        Returns:
            (B, L, dim).
        """
        batch, length, _ = x.shape
        if not self.is_cross:
            packed = torch.cat([self.to_q(x), self.to_k(x), self.to_v(x)], dim=-1)
            query, key, value = packed.view(batch, length, self.heads, 3 * self.head_dim).split(
                self.head_dim, dim=-1
            )
            if self.qk_norm:
                key = self.norm_k(key)
            key, value = key.transpose(1, 2), value.transpose(1, 2)
        else:
            if key_value is None:
                if context is None:
                    raise ValueError("cross-attention needs a context or its key_value")
                key_value = self.key_value(context)
            key, value = key_value
            query = self.to_q(x).view(batch, length, self.heads, self.head_dim)
        if self.qk_norm:
            query = self.norm_q(query)
        out = attention(query.transpose(1, 2), key, value)
        return self.to_out[0](out.transpose(1, 2).reshape(batch, length, -1))


class GELUProjection(nn.Module):
    """Linear then exact (erf) GELU; key ``proj``."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.proj(x))


class FeedForward(nn.Module):
    """``net.0.proj`` (dim -> inner, exact GELU), ``net.1`` (dropout, no parameters), ``net.2``."""

    def __init__(self, dim: int, inner_dim: int | None = None) -> None:
        super().__init__()
        inner = inner_dim or 4 * dim
        self.net = nn.ModuleList([GELUProjection(dim, inner), nn.Identity(), Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TripoSGBlock(nn.Module):
    """One transformer block: optional long skip, self-attention, cross-attention, MLP.

    Pre-norm residual block with float32 LayerNorms (eps 1e-5):
    h = LN_skip(W_skip [skip; h]) (skip blocks: skip first, norm after the linear),
    h += SA(LN1 h), h += CA(LN2 h, context), h += FF(LN3 h).

    Args:
        dim: token width.
        heads: attention heads.
        self_attention: include ``norm1`` / ``attn1``.
        context_dim: include ``norm2`` / ``attn2`` attending to a context of this width.
        qk_norm: RMSNorm of queries and keys (the DiT).
        norm_cross: LayerNorm of the cross-attention's key/value input (the VAE).
        skip: include ``skip_linear`` / ``skip_norm`` (the DiT's second half).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        self_attention: bool = True,
        context_dim: int | None = None,
        qk_norm: bool = False,
        norm_cross: bool = False,
        skip: bool = False,
    ) -> None:
        super().__init__()
        eps = 1e-5
        self.has_self_attention = self_attention
        if self_attention:
            self.norm1 = LayerNorm32(dim, eps)
            self.attn1 = TripoSGAttention(dim, heads, qk_norm=qk_norm)
        self.has_cross_attention = context_dim is not None
        if context_dim is not None:
            self.norm2 = LayerNorm32(dim, eps)
            self.attn2 = TripoSGAttention(
                dim, heads, context_dim=context_dim, qk_norm=qk_norm, norm_cross=norm_cross
            )
        self.norm3 = LayerNorm32(dim, eps)
        self.ff = FeedForward(dim)
        self.has_skip = skip
        if skip:
            self.skip_norm = LayerNorm32(dim, eps)
            self.skip_linear = Linear(2 * dim, dim)

    def forward(
        self,
        hidden: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        skip: torch.Tensor | None = None,
        key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Args: hidden (B, L, dim); context (B, S, context_dim); skip (B, L, dim).

        Returns:
            (B, L, dim).
        """
        if self.has_skip:
            if skip is None:
                raise ValueError("this block takes a long skip input")
            # The released weights apply the norm after the linear (``skip_norm_last``).
            hidden = self.skip_norm(self.skip_linear(torch.cat([skip, hidden], dim=-1)))
        if self.has_self_attention:
            hidden = hidden + self.attn1(self.norm1(hidden))
        if self.has_cross_attention:
            hidden = hidden + self.attn2(self.norm2(hidden), context, key_value=key_value)
        return hidden + self.ff(self.norm3(hidden))
