"""Multi-head attention through one function, with a plain reference twin.

Every attention of every model goes through :func:`attention`. By default it calls
``torch.nn.functional.scaled_dot_product_attention``, which on CUDA dispatches to fused
(flash / memory-efficient) kernels and never materialises the score matrix of a long
sequence. An additive ``bias`` (Swin's relative positions, a mask) goes to SDPA's
``attn_mask``. The reference backend computes softmax(q k^T * scale + bias) v explicitly in float32,
one block of queries at a time; it is the test oracle for the fused path, and the block
size keeps even the oracle from allocating a full (L x L) matrix per head.

The backend is a choice of the caller (``with attention_backend("reference"): ...``), held in
a context variable, so concurrent jobs in one process do not see each other's choice.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F

from genesis3d.errors import ConfigError

AttentionBackend = Literal["sdpa", "reference"]
BACKENDS: tuple[str, ...] = ("sdpa", "reference")

_BACKEND: contextvars.ContextVar[str] = contextvars.ContextVar(
    "genesis3d_attention", default="sdpa"
)

#: Queries per block in the reference backend (bounds its score buffer to block x L).
REFERENCE_QUERY_BLOCK = 1024


@contextlib.contextmanager
def attention_backend(name: AttentionBackend) -> Iterator[None]:
    """Use ``name`` for every :func:`attention` call inside the ``with`` block.

    Raises:
        ConfigError: an unknown backend name.
    """
    if name not in BACKENDS:
        raise ConfigError(f"attention backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    token = _BACKEND.set(name)
    try:
        yield
    finally:
        _BACKEND.reset(token)


def current_backend() -> str:
    """The backend :func:`attention` uses at this point of the program."""
    return _BACKEND.get()


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    scale: float | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention, optionally with additive scores (a bias or a mask).

    Args:
        query: (B, H, Lq, D).
        key: (B, H, Lk, D).
        value: (B, H, Lk, Dv).
        scale: multiplier of the scores; default 1/sqrt(D).
        bias: None, or additive scores broadcastable to (B, H, Lq, Lk) (e.g. Swin's relative
            position bias); -inf masks a pair, and every query must keep at least one key.

    Returns:
        (B, H, Lq, Dv) in the dtype of ``query``.
    """
    if _BACKEND.get() == "reference":
        return reference_attention(query, key, value, scale=scale, bias=bias)
    mask = None if bias is None else bias.to(query.dtype)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)


def reference_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    scale: float | None = None,
    bias: torch.Tensor | None = None,
    query_block: int = REFERENCE_QUERY_BLOCK,
) -> torch.Tensor:
    """Explicit softmax attention in float32, computed block by block over the queries.

    Same arguments and result as :func:`attention`; slower, and simple enough to trust.
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    key32 = key.float()
    value32 = value.float()
    if bias is not None and bias.dim() < 2:
        raise ConfigError(f"attention bias must have at least 2 dimensions, got {bias.dim()}")
    blocks = []
    for start in range(0, query.shape[-2], query_block):
        stop = start + query_block
        scores = torch.matmul(query[..., start:stop, :].float(), key32.transpose(-1, -2)) * scale
        if bias is not None:
            rows = bias if bias.shape[-2] == 1 else bias[..., start:stop, :]
            scores = scores + rows.float()
        weights = torch.softmax(scores, dim=-1)
        blocks.append(torch.matmul(weights, value32))
    return torch.cat(blocks, dim=-2).to(query.dtype)
