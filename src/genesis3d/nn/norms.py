"""Normalisation layers that compute in float32 whatever the model dtype."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm_fp32(
    x: torch.Tensor,
    eps: float,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """LayerNorm over the last dimension, computed in float32, returned in ``x.dtype``.

    Args:
        x: (..., C).
        eps: added to the variance.
        weight, bias: optional (C,) affine, applied in float32.
    """
    out = F.layer_norm(
        x.float(),
        x.shape[-1:],
        None if weight is None else weight.float(),
        None if bias is None else bias.float(),
        eps,
    )
    return out.to(x.dtype)


class LayerNorm32(nn.LayerNorm):
    """``nn.LayerNorm`` (same parameter names) that computes in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm_fp32(x, self.eps, self.weight, self.bias)


class MultiHeadRMSNorm(nn.Module):
    """Per-head RMS norm of queries or keys: x / max(|x|, 1e-12) * gamma * sqrt(D), in float32.

    Parameter ``gamma``: (H, D). Input (..., H, D); output in the input dtype.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.gamma = nn.Parameter(torch.ones(heads, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.normalize(x.float(), dim=-1) * self.gamma.float() * self.scale
        return out.to(x.dtype)
