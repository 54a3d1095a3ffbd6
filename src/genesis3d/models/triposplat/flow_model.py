"""``LatentSeqMMFlowModel``: TripoSplat's flow DiT (latent tokens + image tokens + camera token).

Forward graph (spec section 3.6): the 8192 latent tokens get a fixed Sobol positional embedding
and two modulated "noise refiner" blocks; the 4101 image tokens (DINOv3 + FLUX.2 VAE features,
added token-wise) get two unmodulated "context refiner" blocks; then the latent, image and camera
tokens run jointly through the modulated blocks. Every attention block has its own RePo module
that predicts rotary positions from the block's input. Parameter names equal the checkpoint's.
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.models.triposplat.config import FlowModelConfig
from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.embeddings import TimestepEmbedder, point_embedding_pow2, sobol_anchors
from genesis3d.nn.layers import FeedForward, modulate
from genesis3d.nn.norms import LayerNorm32, MultiHeadRMSNorm, layer_norm_fp32
from genesis3d.nn.rope import RePo3DRotaryEmbedding, apply_interleaved_rotary


class RopeSelfAttention(nn.Module):
    """Self-attention: ``qkv`` -> RePo rotation of q, k -> per-head RMS norm -> SDPA -> ``out``.

    The rotation comes before the norm (the norm's gamma is per channel, so the order matters).
    """

    def __init__(self, channels: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(channels, heads * head_dim * 3)
        self.q_norm = MultiHeadRMSNorm(head_dim, heads)
        self.k_norm = MultiHeadRMSNorm(head_dim, heads)
        self.out = Linear(heads * head_dim, channels)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C); angles: (B, L, H, D/2) float32 -> (B, L, C)."""
        batch, length, _ = x.shape
        query, key, value = self.qkv(x).view(batch, length, 3, self.heads, -1).unbind(2)
        query = self.q_norm(apply_interleaved_rotary(query, angles))
        key = self.k_norm(apply_interleaved_rotary(key, angles))
        out = attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2))
        return self.out(out.transpose(1, 2).reshape(batch, length, -1))


class ModulatedBlock(nn.Module):
    """Block modulated by the shared timestep modulation plus its own ``shift_table``.

    (shift, scale, gate) for attention then for the MLP = chunk6(t_mod + shift_table);
    LayerNorms have no affine (eps 1e-6, float32).
    """

    def __init__(self, channels: int, heads: int, head_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.shift_table = nn.Parameter(torch.zeros(1, 6 * channels))
        self.attn = RopeSelfAttention(channels, heads, head_dim)
        self.mlp = FeedForward(channels, mlp_ratio)

    def forward(self, x: torch.Tensor, t_mod: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        mods = (t_mod + self.shift_table).chunk(6, dim=-1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods
        h = modulate(layer_norm_fp32(x, 1e-6), shift_msa, scale_msa)
        x = x + gate_msa.unsqueeze(1) * self.attn(h, angles)
        h = modulate(layer_norm_fp32(x, 1e-6), shift_mlp, scale_mlp)
        return x + gate_mlp.unsqueeze(1) * self.mlp(h)


class ContextBlock(nn.Module):
    """Unmodulated block with affine LayerNorms (``norm1``, ``norm2``; eps 1e-6, float32)."""

    def __init__(self, channels: int, heads: int, head_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(channels, eps=1e-6)
        self.attn = RopeSelfAttention(channels, heads, head_dim)
        self.norm2 = LayerNorm32(channels, eps=1e-6)
        self.mlp = FeedForward(channels, mlp_ratio)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), angles)
        return x + self.mlp(self.norm2(x))


class LatentSeqMMFlowModel(nn.Module):
    """TripoSplat flow DiT. See :meth:`forward`."""

    def __init__(self, config: FlowModelConfig) -> None:
        super().__init__()
        self.config = config
        channels, heads, head_dim = config.model_channels, config.heads, config.head_dim
        refiners = config.num_refiner_blocks

        def repo_layers(count: int) -> nn.ModuleList:
            return nn.ModuleList(
                RePo3DRotaryEmbedding(channels, heads, head_dim) for _ in range(count)
            )

        self.t_embedder = TimestepEmbedder(channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(channels, 6 * channels))
        self.input_layer = Linear(config.in_channels, channels)
        self.cond_embedder = Linear(config.cond_channels, channels)
        self.cond_embedder2 = Linear(config.cond2_channels, channels)
        self.cam_refiner = FeedForward(channels, in_channels=config.cam_channels, hidden=channels)
        self.noise_refiner = nn.ModuleList(
            ModulatedBlock(channels, heads, head_dim, config.mlp_ratio) for _ in range(refiners)
        )
        self.context_refiner = nn.ModuleList(
            ContextBlock(channels, heads, head_dim, config.mlp_ratio) for _ in range(refiners)
        )
        self.blocks = nn.ModuleList(
            ModulatedBlock(channels, heads, head_dim, config.mlp_ratio)
            for _ in range(config.num_blocks)
        )
        self.noise_repo_layers = repo_layers(refiners)
        self.context_repo_layers = repo_layers(refiners)
        self.repo_layers = repo_layers(config.num_blocks)
        self.shift_table = nn.Parameter(torch.zeros(1, 2, channels))
        self.out_layer = Linear(channels, config.out_channels)
        self.cam_out_layer = Linear(channels, config.cam_channels)
        # The Sobol anchors' embedding is fixed (not in the checkpoint): computed once in float32
        # on the CPU (also when the module is built on the meta device), moved with the module.
        with torch.device("cpu"):
            anchors = point_embedding_pow2(sobol_anchors(config.q_token_length), channels)
        self.register_buffer("anchor_embedding", anchors, persistent=False)

    def forward(
        self,
        latent: torch.Tensor,
        camera: torch.Tensor,
        t: torch.Tensor,
        feature1: torch.Tensor,
        feature2: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity of the latent and camera streams.

        Args:
            latent: (B, Q, in_channels) noisy latent tokens.
            camera: (B, 1, cam_channels) noisy camera token.
            t: (B,) model time, 1000 * t_flow.
            feature1: (B, Lc, cond_channels) DINOv3 features.
            feature2: (B, Lc, cond2_channels) FLUX.2 VAE features (first 5 tokens zero).

        Returns:
            (v_latent (B, Q, out_channels), v_camera (B, 1, cam_channels)) in the model dtype.
        """
        dtype = self.input_layer.weight.dtype
        queries = latent.shape[1]
        t_emb = self.t_embedder(t)
        t_mod = self.adaLN_modulation(t_emb)

        h_x = self.input_layer(latent.to(dtype)) + self.anchor_embedding[:queries].to(dtype)
        for block, repo in zip(self.noise_refiner, self.noise_repo_layers, strict=True):
            h_x = block(h_x, t_mod, repo(h_x))
        h_c = self.cond_embedder(feature1.to(dtype)) + self.cond_embedder2(feature2.to(dtype))
        for block, repo in zip(self.context_refiner, self.context_repo_layers, strict=True):
            h_c = block(h_c, repo(h_c))
        h_m = self.cam_refiner(camera.to(dtype))

        h = torch.cat([h_x, h_c, h_m], dim=1)
        for block, repo in zip(self.blocks, self.repo_layers, strict=True):
            h = block(h, t_mod, repo(h))

        shift, scale = (self.shift_table + t_emb.unsqueeze(1)).unbind(1)
        v_latent = self.out_layer(modulate(layer_norm_fp32(h[:, :queries], 1e-5), shift, scale))
        v_camera = self.cam_out_layer(modulate(layer_norm_fp32(h[:, -1:], 1e-5), shift, scale))
        return v_latent, v_camera
