"""The TRELLIS.2 flow transformers: dense sparse-structure flow and sparse latent flows.

Both predict the rectified-flow velocity from the noisy latent, the model time (1000 t) and
the DINOv3 image tokens. Parameter names equal the official checkpoints'. The official dense
model keeps its rotary phases in a ``rope_phases`` buffer that its checkpoints do not hold;
here the angles are computed from the grid in ``forward`` instead, so the module's state
dict is exactly the checkpoint's.

Precision: the embedding, adaLN, input and output layers run in their own parameters'
dtype; the blocks run in the dtype of their parameters (the pipeline may store them in
bfloat16), with norms, RoPE and attention statistics in float32; the output is returned in
the dtype of the input latent, as the official ``manual_cast`` path does.
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.models.trellis2.blocks import ModulatedCrossBlock
from genesis3d.models.trellis2.config import FlowConfig
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.embeddings import TimestepEmbedder
from genesis3d.nn.norms import layer_norm_fp32
from genesis3d.nn.rope import grid_rotary_angles
from genesis3d.nn.sparse.attention import uniform_layout
from genesis3d.nn.sparse.tensor import SparseTensor, sparse_cat


class _FlowTransformer(nn.Module):
    """Shared parts: timestep embedding, shared adaLN, input/output layers and the blocks."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.model_channels
        self.t_embedder = TimestepEmbedder(channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(channels, 6 * channels))
        self.input_layer = Linear(config.in_channels, channels)
        self.blocks = nn.ModuleList(
            ModulatedCrossBlock(
                channels,
                config.cond_channels,
                config.heads,
                config.mlp_ratio,
                qk_rms_norm=config.qk_rms_norm,
                qk_rms_norm_cross=config.qk_rms_norm_cross,
            )
            for _ in range(config.num_blocks)
        )
        self.out_layer = Linear(channels, config.out_channels)

    def rotary(self, positions: torch.Tensor) -> torch.Tensor:
        """(T, 3) voxel positions -> (T, head_dim / 2) float32 angles."""
        base, theta = self.config.rope_freq
        return grid_rotary_angles(positions, self.config.head_dim, theta) * base

    def run(
        self,
        tokens: torch.Tensor,
        layout: list[slice],
        t: torch.Tensor,
        cond: torch.Tensor,
        rotary: torch.Tensor,
    ) -> torch.Tensor:
        """tokens (T, Cin) packed, t (B,), cond (B, Lc, Cc), rotary (T, D/2) -> (T, Cout)."""
        in_dtype = tokens.dtype
        h = self.input_layer(tokens.to(self.input_layer.weight.dtype))
        t_mod = self.adaLN_modulation(self.t_embedder(t))
        block_dtype = self.blocks[0].mlp.mlp[0].weight.dtype if len(self.blocks) else h.dtype
        h, t_mod, cond = h.to(block_dtype), t_mod.to(block_dtype), cond.to(block_dtype)
        for block in self.blocks:
            h = block(h, layout, t_mod, cond, rotary)
        h = layer_norm_fp32(h.to(in_dtype), 1e-5)
        return self.out_layer(h.to(self.out_layer.weight.dtype)).to(in_dtype)


class SparseStructureFlowModel(_FlowTransformer):
    """Stage 1: velocity of the dense (B, C, R, R, R) occupancy latent."""

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, Cin, R, R, R), t (B,) model time (1000 t), cond (B, Lc, Cc) -> (B, Cout, R, R, R).

        Token index = (x R + y) R + z; RoPE positions are the voxel coordinates.
        """
        batch, _, *size = x.shape
        tokens = x.flatten(2).transpose(1, 2).flatten(0, 1)
        axes = [torch.arange(n, device=x.device) for n in size]
        positions = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        rotary = self.rotary(positions).repeat(batch, 1)
        length = positions.shape[0]
        out = self.run(tokens, uniform_layout(batch, length), t, cond, rotary)
        return out.unflatten(0, (batch, length)).transpose(1, 2).reshape(batch, -1, *size)


class SLatFlowModel(_FlowTransformer):
    """Stages 2 and 3: velocity of a sparse structured latent (shape, or texture given shape)."""

    def forward(
        self,
        x: SparseTensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        concat_cond: SparseTensor | None = None,
    ) -> SparseTensor:
        """Velocity on the voxels of ``x``, row for row.

        Args:
            x: noisy latent, (T, C) features.
            t: (B,) model time (1000 t).
            cond: (B, Lc, Cc) image tokens.
            concat_cond: features on the same voxels appended to x's channels (texture flow).

        Returns:
            A SparseTensor on x's voxels with ``out_channels`` features.
        """
        if concat_cond is not None:
            x = sparse_cat([x, concat_cond])
        rotary = x.cached(
            ("rotary", self.config.head_dim, self.config.rope_freq),
            lambda: self.rotary(x.coords[:, 1:]),
        )
        return x.replace(self.run(x.feats, x.layout, t, cond, rotary))


class ElasticSLatFlowModel(SLatFlowModel):
    """The released checkpoints' class name; at inference it computes what SLatFlowModel does."""
