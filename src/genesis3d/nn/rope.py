"""Rotary position embeddings written with real arithmetic (no complex tensors).

RePo ("re-positioning") predicts a 3-D position per token and head from the hidden state
itself, with learned frequencies per axis, and rotates interleaved channel pairs of the
queries and keys by those angles.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.norms import LayerNorm32


def rope_axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Channel pairs per axis: the head is split as (2 n, 2 n, rest) with n = (head_dim // 3) // 2.

    64 -> (10, 10, 12) pairs, i.e. dims 20/20/24; 58 -> (9, 9, 11).
    """
    first = (head_dim // 3) // 2
    return first, first, head_dim // 2 - 2 * first


def apply_interleaved_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2j, 2j+1) of ``x`` by ``angles[..., j]``, in float32.

    Args:
        x: (..., D) queries or keys.
        angles: (..., D/2) radians, broadcastable to x's leading dims.

    Returns:
        (..., D) in x's dtype: x'_{2j} = x_{2j} cos - x_{2j+1} sin, x'_{2j+1} = x_{2j} sin + x_{2j+1} cos.
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    cos, sin = torch.cos(angles), torch.sin(angles)
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def apply_half_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE: x cos + rot_half(x) sin with rot_half([a, b]) = [-b, a], in float32.

    Args:
        x: (..., D).
        cos, sin: (..., D), broadcastable.
    """
    first, second = x.float().chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return (x.float() * cos + rotated * sin).to(x.dtype)


class RePo3DRotaryEmbedding(nn.Module):
    """Content-dependent 3-D positions -> rotary angles per token and head.

    u = LayerNorm(h) (affine, eps 1e-5, float32); g = SiLU(gate_map u) * content_map u;
    p = final_map g reshaped (B, L, H, 3) (row 3 h + axis of ``final_map``);
    angle_{h,j} = (p_{h,axis(j)} * f_j) * pi with learned ``freqs_0/1/2``.

    The angles are computed in float32 whatever the model dtype (upstream computes the
    product in float16; float32 is more accurate and does not depend on the dtype).
    """

    def __init__(self, channels: int, heads: int, head_dim: int) -> None:
        super().__init__()
        hidden = channels // 8
        self.heads = heads
        self.norm = LayerNorm32(channels, eps=1e-5)
        self.gate_map = Linear(channels, hidden, bias=False)
        self.content_map = Linear(channels, hidden, bias=False)
        self.final_map = Linear(hidden, heads * 3, bias=False)
        for axis, pairs in enumerate(rope_axis_pairs(head_dim)):
            self.register_parameter(f"freqs_{axis}", nn.Parameter(torch.linspace(1, 16, pairs)))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (B, L, C) -> angles (B, L, H, head_dim/2) float32."""
        normed = self.norm(hidden)
        gated = F.silu(self.gate_map(normed)) * self.content_map(normed)
        positions = self.final_map(gated).unflatten(-1, (self.heads, 3)).float()
        per_axis = [
            positions[..., axis : axis + 1] * getattr(self, f"freqs_{axis}").float()
            for axis in range(3)
        ]
        return torch.cat(per_axis, dim=-1) * math.pi


def grid_rotary_angles(
    positions: torch.Tensor, head_dim: int, theta: float = 10000.0
) -> torch.Tensor:
    """Rotary angles of integer 3-D positions, axis-major, for interleaved channel pairs.

    Per axis count = head_dim // 2 // 3 frequencies f_j = 1 / theta^(j / count); the angles are
    [x f_0 .. x f_{n-1}, y f_0 .., z f_0 ..], and the remaining head_dim / 2 - 3 count pairs get
    angle 0 (not rotated). Used by TRELLIS.2 on voxel coordinates of the latent grid.

    Args:
        positions: (N, 3) voxel coordinates (x, y, z), any numeric dtype.
        head_dim: channels per head (even).

    Returns:
        (N, head_dim / 2) float32.
    """
    count = head_dim // 2 // 3
    exponents = torch.arange(count, dtype=torch.float32, device=positions.device) / count
    freqs = 1.0 / (theta**exponents)
    angles = (positions.float()[:, :, None] * freqs[None, None, :]).flatten(1)
    pad = head_dim // 2 - angles.shape[1]
    if pad:
        angles = torch.cat([angles, angles.new_zeros(angles.shape[0], pad)], dim=1)
    return angles
