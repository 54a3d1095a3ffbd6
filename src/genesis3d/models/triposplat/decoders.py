"""TripoSplat's two decoders of the flow latent: octree occupancy and Gaussian features.

Both embed query points with a log2-spaced sinusoidal embedding and attend to the 8192
latent tokens (a set: no positional information) with cross-attention. In the released
decoder file their keys carry the prefixes ``octree.`` and ``gs.``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.models.triposplat.config import GaussianDecoderConfig, OctreeDecoderConfig
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.embeddings import TimestepEmbedder, point_embedding_log2
from genesis3d.nn.layers import FeedForward, MultiHeadAttention, modulate
from genesis3d.nn.norms import LayerNorm32, layer_norm_fp32


class ModulatedCrossOnlyBlock(nn.Module):
    """x += gate * CrossAttn(modulated LN(x), cond); x += gate * MLP(modulated LN(x)).

    No self-attention: every query row is independent of the others given ``cond``.
    """

    def __init__(self, channels: int, context_channels: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.cross_attn = MultiHeadAttention(
            channels, heads, kind="cross", context_channels=context_channels
        )
        self.mlp = FeedForward(channels, mlp_ratio)

    def forward(self, x: torch.Tensor, mod: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)
        h = modulate(layer_norm_fp32(x, 1e-6), shift_msa, scale_msa)
        x = x + gate_msa.unsqueeze(1) * self.cross_attn(h, cond)
        h = modulate(layer_norm_fp32(x, 1e-6), shift_mlp, scale_mlp)
        return x + gate_mlp.unsqueeze(1) * self.mlp(h)


class OctreeProbabilityFixedlenDecoder(nn.Module):
    """Logits over the 8 children of each queried octree cell.

    Level embedding: sinusoids of l * exp(-ln(1024) i / 128) * 2 pi (l = child resolution 2^level),
    an MLP, and one shared modulation for all blocks.
    """

    def __init__(self, config: OctreeDecoderConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.model_channels
        self.in_proj = Linear(3, channels)
        self.input_layer = Linear(channels, channels)
        self.l_embedder = TimestepEmbedder(channels, max_period=1024.0, scale=2 * math.pi)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(channels, 6 * channels))
        self.blocks = nn.ModuleList(
            ModulatedCrossOnlyBlock(channels, config.cond_channels, config.heads, config.mlp_ratio)
            for _ in range(config.num_blocks)
        )
        self.out_proj = Linear(channels, 8)

    def forward(self, x: torch.Tensor, l: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # noqa: E741
        """Child logits.

        Args:
            x: (B, L, 3) parent-cell centres in [0, 1)^3.
            l: (B,) child resolution 2^level (integer or float).
            cond: (B, Lc, cond_channels) the flow latent.

        Returns:
            (B, L, 8) logits in the model dtype; child c has offset (c & 1, c >> 1 & 1, c >> 2 & 1).
        """
        dtype = self.in_proj.weight.dtype
        h = self.in_proj(x.to(dtype)) + point_embedding_log2(x, self.config.model_channels).to(
            dtype
        )
        h = self.input_layer(h)
        mod = self.adaLN_modulation(self.l_embedder(l.float()))
        cond = cond.to(dtype)
        for block in self.blocks:
            h = block(h, mod, cond)
        return self.out_proj(layer_norm_fp32(h, 1e-5))


class TransformerCrossBlock(nn.Module):
    """x += SelfAttn(LN1 x); x += CrossAttn(LN2 x, cond); x += MLP(LN3 x). Only LN2 is affine."""

    def __init__(self, channels: int, context_channels: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(channels, heads, kind="self")
        self.norm2 = LayerNorm32(channels, eps=1e-6)
        self.cross_attn = MultiHeadAttention(
            channels, heads, kind="cross", context_channels=context_channels
        )
        self.mlp = FeedForward(channels, mlp_ratio)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(layer_norm_fp32(x, 1e-6))
        x = x + self.cross_attn(self.norm2(x), cond)
        return x + self.mlp(layer_norm_fp32(x, 1e-6))


def hammersley(count: int) -> np.ndarray:
    """The 3-D Hammersley points j / count, radical inverse base 2, base 3: (count, 3) float64."""

    def radical_inverse(index: int, base: int) -> float:
        value, fraction = 0.0, 1.0 / base
        while index:
            value += (index % base) * fraction
            index //= base
            fraction /= base
        return value

    return np.array(
        [[j / count, radical_inverse(j, 2), radical_inverse(j, 3)] for j in range(count)]
    )


class ElasticGaussianFixedlenDecoder(nn.Module):
    """Features of ``num_gaussians`` (32) Gaussians per point: (B, P, 32 * 15).

    Self-attention runs over all P points jointly, so the points of one object must be decoded
    together (chunking changes the result). Buffers ``points_offset_perturbation`` (32, 3) and
    ``base_offset_scale`` () are in the checkpoint too.
    """

    def __init__(self, config: GaussianDecoderConfig) -> None:
        super().__init__()
        self.config = config
        rep = config.representation_config
        channels = config.model_channels
        self.in_proj = Linear(config.in_channels, channels)
        self.input_layer = Linear(channels, channels)
        self.blocks = nn.ModuleList(
            TransformerCrossBlock(channels, config.cond_channels, config.heads, config.mlp_ratio)
            for _ in range(config.num_blocks)
        )
        self.out_proj = Linear(channels, rep.features_per_point)
        # Both buffers are derived in float32 in this operation order, which reproduces the
        # released values bit for bit (a float64 derivation is one ulp off).
        points = torch.tensor(hammersley(rep.num_gaussians), dtype=torch.float32)
        self.register_buffer(
            "points_offset_perturbation", torch.atanh((2 * points - 1) / rep.perturbe_size)
        )
        offset_scale = torch.tensor(rep.offset_scale, dtype=torch.float32)
        self.register_buffer("base_offset_scale", torch.log(torch.exp(offset_scale) - 1))

    def forward(self, points: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """points: (B, P, 3) in [0, 1)^3; cond: (B, Lc, cond_channels) -> (B, P, 480)."""
        dtype = self.in_proj.weight.dtype
        h = self.in_proj(points.to(dtype)) + point_embedding_log2(
            points, self.config.model_channels
        ).to(dtype)
        h = self.input_layer(h)
        cond = cond.to(dtype)
        for block in self.blocks:
            h = block(h, cond)
        return self.out_proj(layer_norm_fp32(h, 1e-5))

    def offsets(self, features: torch.Tensor) -> torch.Tensor:
        """Offsets of the Gaussians from their point: (B, P, 480) -> (B, P, 32, 3).

        o = tanh(xyz + perturbation) * (perturbe_size / 2) * softplus(offset_scale + base).
        """
        rep = self.config.representation_config
        count = rep.num_gaussians
        xyz = features[..., : 3 * count].unflatten(-1, (count, 3)) * rep.lr["_xyz"]
        offset_scale = features[..., 14 * count : 15 * count].unsqueeze(-1)
        scale = F.softplus(offset_scale + self.base_offset_scale.to(features.dtype))
        perturbation = self.points_offset_perturbation.to(features.dtype)
        return torch.tanh(xyz + perturbation) * (rep.perturbe_size / 2) * scale


class OctreeGaussianDecoder(nn.Module):
    """The released decoder file's module: ``octree.*`` and ``gs.*``."""

    def __init__(self, octree: OctreeDecoderConfig, gaussians: GaussianDecoderConfig) -> None:
        super().__init__()
        self.octree = OctreeProbabilityFixedlenDecoder(octree)
        self.gs = ElasticGaussianFixedlenDecoder(gaussians)
