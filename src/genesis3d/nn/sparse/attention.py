"""Variable-length attention over a packed batch, through the shared attention function.

Queries and keys of all batch items are packed row after row ((T, H, D), items contiguous);
item i attends only to its own keys. When every item has the same lengths the batch is a
plain reshape and one call; otherwise each item is one call on its own rows. Nothing is
padded to the longest item and no score matrix is built (the shared function is SDPA by
default).
"""

from __future__ import annotations

import torch

from genesis3d.errors import InputError
from genesis3d.nn.attention import attention
from genesis3d.nn.layers import MultiHeadAttention
from genesis3d.nn.rope import apply_interleaved_rotary


def varlen_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    query_layout: list[slice],
    key_layout: list[slice],
) -> torch.Tensor:
    """Attention of each item's queries to that item's keys.

    Args:
        query: (T, H, D) packed queries; ``query_layout[i]`` is item i's rows.
        key: (S, H, D), value: (S, H, Dv) packed; ``key_layout[i]`` is item i's rows.

    Returns:
        (T, H, Dv) in the dtype of ``query``.
    """
    if len(query_layout) != len(key_layout):
        raise InputError(
            f"varlen attention needs as many key items as query items, got {len(key_layout)} and {len(query_layout)}"
        )
    q_lengths = {rows.stop - rows.start for rows in query_layout}
    k_lengths = {rows.stop - rows.start for rows in key_layout}
    if len(q_lengths) == 1 and len(k_lengths) == 1:
        batch = len(query_layout)
        out = attention(
            query.unflatten(0, (batch, -1)).transpose(1, 2),
            key.unflatten(0, (batch, -1)).transpose(1, 2),
            value.unflatten(0, (batch, -1)).transpose(1, 2),
        )
        return out.transpose(1, 2).flatten(0, 1)
    out = query.new_empty(query.shape[0], query.shape[1], value.shape[2])
    for q_rows, k_rows in zip(query_layout, key_layout, strict=True):
        if q_rows.stop == q_rows.start:
            continue  # an item without voxels (e.g. nothing occupied) has nothing to attend
        out[q_rows] = attention(
            query[q_rows].transpose(0, 1)[None],
            key[k_rows].transpose(0, 1)[None],
            value[k_rows].transpose(0, 1)[None],
        )[0].transpose(0, 1)
    return out


def uniform_layout(batch: int, length: int) -> list[slice]:
    """Row slices of ``batch`` items of ``length`` rows each."""
    return [slice(i * length, (i + 1) * length) for i in range(batch)]


class SparseMultiHeadAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` (same parameters) on packed variable-length sequences."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        layout: list[slice],
        context: torch.Tensor | None = None,
        context_layout: list[slice] | None = None,
        rotary: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Packed attention.

        Args:
            x: (T, C) packed tokens; ``layout`` gives each item's rows.
            context: cross attention only: (S, Cc) packed with ``context_layout``, or a dense
                (B, Lc, Cc) batch (then every item has Lc context tokens).
            rotary: (T, D/2) float32 angles of the queries and keys (self attention).

        Returns:
            (T, C).
        """
        key_layout = layout
        if self.kind == "cross":
            if context is None:
                raise ValueError("cross attention needs a context tensor")
            if context.dim() == 3:
                context_layout = uniform_layout(context.shape[0], context.shape[1])
                context = context.flatten(0, 1)
            if context_layout is None:
                raise ValueError("a packed context needs its layout")
            key_layout = context_layout
        query, key, value = self.project(x, context)
        if rotary is not None:
            query = apply_interleaved_rotary(query, rotary[:, None, :])
            key = apply_interleaved_rotary(key, rotary[:, None, :])
        out = varlen_attention(query, key, value, layout, key_layout)
        return self.to_out(out.flatten(1))
