"""Sinusoidal embeddings: timesteps, point positions, and the fixed Sobol anchors.

The operation order of every angle is part of the contract: the point embeddings reach
angles of ~4e5 rad, where float32 rounding of a reordered product changes the result.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genesis3d.nn.compute_dtype import Linear


def timestep_embedding(
    t: torch.Tensor, dim: int, max_period: float = 10000.0, *, sin_first: bool = False
) -> torch.Tensor:
    """[cos(t f_i), sin(t f_i)] with f_i = exp(-ln(max_period) i / (dim/2)), in float32.

    Args:
        t: (B,) timesteps (any real dtype; cast to float32).
        dim: even embedding width.
        sin_first: give [sin, cos] instead (diffusers' ``Timesteps`` without flip).

    Returns:
        (B, dim) float32.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    if sin_first:
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding followed by Linear-SiLU-Linear (keys ``mlp.0``, ``mlp.2``).

    ``scale`` multiplies the frequencies' arguments (2*pi for the octree level embedding).
    """

    def __init__(
        self,
        hidden: int,
        frequency_dim: int = 256,
        max_period: float = 10000.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.max_period = max_period
        self.scale = scale
        self.mlp = nn.Sequential(Linear(frequency_dim, hidden), nn.SiLU(), Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: (B,) -> (B, hidden) in the dtype of the MLP weights."""
        if self.scale == 1.0:
            embedded = timestep_embedding(t, self.frequency_dim, self.max_period)
        else:
            half = self.frequency_dim // 2
            freqs = torch.exp(
                -math.log(self.max_period)
                * torch.arange(half, dtype=torch.float32, device=t.device)
                / half
            )
            args = t.float()[:, None] * freqs[None] * self.scale
            embedded = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(embedded.to(self.mlp[0].weight.dtype))


def pow2_exponents(freq_dim: int) -> torch.Tensor:
    """Exponents of the Sobol anchor embedding: 0..15, then 16 j / r for j < r = freq_dim - 16."""
    whole = torch.arange(min(freq_dim, 16), dtype=torch.float32)
    rest = freq_dim - 16
    if rest <= 0:
        return whole
    return torch.cat([whole, torch.arange(rest, dtype=torch.float32) / rest * 16])


def point_embedding_pow2(points: torch.Tensor, channels: int) -> torch.Tensor:
    """Embedding of points with angles ((c * 2^e) * 2) * pi, float32.

    Args:
        points: (..., 3) float32 coordinates.
        channels: output width; freq_dim = channels // 6, the tail is zero padded.

    Returns:
        (..., channels) float32: per axis [sin (F), cos (F)], then zeros.
    """
    freq_dim = channels // 3 // 2
    powers = torch.pow(2.0, pow2_exponents(freq_dim).to(points.device))
    angles = ((points.float()[..., None] * powers) * 2) * math.pi
    return _sin_cos_layout(angles, channels)


def point_embedding_log2(
    points: torch.Tensor, channels: int, max_exponent: float = 10.0
) -> torch.Tensor:
    """Embedding of points with exponents linspace(0, 10, F) and angles (c * 2^e) * pi, float32.

    Args:
        points: (..., 3).
        channels: output width; freq_dim = channels // 6, the tail is zero padded.

    Returns:
        (..., channels) float32.
    """
    freq_dim = channels // 3 // 2
    exponents = torch.linspace(0, max_exponent, freq_dim, dtype=torch.float32, device=points.device)
    powers = torch.pow(2.0, exponents)
    angles = (points.float()[..., None] * powers) * math.pi
    return _sin_cos_layout(angles, channels)


def _sin_cos_layout(angles: torch.Tensor, channels: int) -> torch.Tensor:
    """(..., 3, F) angles -> (..., channels): [sin x, cos x, sin y, cos y, sin z, cos z, 0...]."""
    embedded = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
    pad = channels - embedded.shape[-1]
    if pad:
        embedded = torch.cat([embedded, embedded.new_zeros(*embedded.shape[:-1], pad)], dim=-1)
    return embedded


def sobol_anchors(count: int, seed: int = 123) -> torch.Tensor:
    """The first ``count`` points of PyTorch's scrambled 3-D Sobol sequence: (count, 3) float32.

    The engine is seeded explicitly, so the global random state is neither read nor changed.
    """
    engine = torch.quasirandom.SobolEngine(dimension=3, scramble=True, seed=seed)
    return engine.draw(count).float()
