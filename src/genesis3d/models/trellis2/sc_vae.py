"""TRELLIS.2's sparse convolutional VAEs (SC-VAE): the shape and texture decoders, and encoders.

A decoder lifts a latent on the 1/16 grid to voxels at full resolution in five stages of
ConvNeXt blocks; stages 0-3 end with a channel-to-space block that subdivides each voxel into
the children its subdivision logits select (logit > 0). The shape decoder predicts those
logits (``to_subdiv``); the texture decoder has no such head and follows the shape
decoder's logits (``guide_subs``), so both end on the same voxels in the same order.
Parameter names equal the official checkpoints'.

Precision: ``from_latent``, ``output_layer`` and ``input_layer``/``to_latent`` run in their
own dtype, the stages in the dtype of their parameters (the released files are float16),
norms in float32; the result comes back in the latent's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import InputError
from genesis3d.models.trellis2.config import (
    FlexiDualGridDecoderConfig,
    SparseUnetDecoderConfig,
    SparseUnetEncoderConfig,
)
from genesis3d.models.trellis2.dual_grid import flexible_dual_grid_to_mesh
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.norms import LayerNorm32
from genesis3d.nn.sparse.conv import SparseConv3d
from genesis3d.nn.sparse.spatial import spatial_to_channel, split_channels, subdivide
from genesis3d.nn.sparse.tensor import SparseTensor


class SparseConvNeXtBlock3d(nn.Module):
    """x + MLP(LN(conv(x))) with a 4x SiLU MLP (LN affine, eps 1e-6)."""

    def __init__(self, channels: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm = LayerNorm32(channels, eps=1e-6)
        self.conv = SparseConv3d(channels, channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(Linear(channels, hidden), nn.SiLU(), Linear(hidden, channels))

    def forward(self, x: SparseTensor) -> SparseTensor:
        h = self.mlp(self.norm(self.conv(x).feats))
        return x.replace(h + x.feats)


class SparseResBlockC2S3d(nn.Module):
    """Channel-to-space residual block: Ci channels on P voxels -> Co channels on their children.

    h = conv1(SiLU(norm1 x)) with 8 Co channels, split into the selected children (block s ->
    child s), then conv2(SiLU(norm2 h)); the skip splits x the same way (Ci/8 channels per
    child) and repeats each channel Co / (Ci/8) times.
    """

    def __init__(self, in_channels: int, out_channels: int, pred_subdiv: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pred_subdiv = pred_subdiv
        self.norm1 = LayerNorm32(in_channels, eps=1e-6)
        self.norm2 = LayerNorm32(out_channels, eps=1e-6, elementwise_affine=False)
        self.conv1 = SparseConv3d(in_channels, out_channels * 8)
        self.conv2 = SparseConv3d(out_channels, out_channels)
        if pred_subdiv:
            self.to_subdiv = Linear(in_channels, 8)

    def forward(
        self, x: SparseTensor, subdiv: torch.Tensor | None = None
    ) -> tuple[SparseTensor, torch.Tensor]:
        """Subdivide ``x``.

        Args:
            x: (P, Ci) voxels.
            subdiv: (P, 8) subdivision logits (required without ``to_subdiv``; ignored with it).

        Returns:
            the (C, Co) children and the (P, 8) logits used.
        """
        if self.pred_subdiv:
            subdiv = self.to_subdiv(x.feats)
        elif subdiv is None:
            raise InputError("a decoder without to_subdiv needs the subdivision logits to follow")
        if subdiv.shape != (len(x), 8):
            raise InputError(f"subdivision logits must be ({len(x)}, 8), got {tuple(subdiv.shape)}")
        h = self.conv1(x.replace(F.silu(self.norm1(x.feats))))
        coords, flat = subdivide(x.coords, subdiv > 0)
        fine = SparseTensor(coords, F.silu(self.norm2(split_channels(h.feats, flat))))
        skip = split_channels(x.feats, flat)
        skip = skip.repeat_interleave(self.out_channels // (self.in_channels // 8), dim=1)
        out = self.conv2(fine)
        return out.replace(out.feats + skip), subdiv


class SparseResBlockS2C3d(nn.Module):
    """Space-to-channel residual block: Ci channels on voxels -> Co channels on their parents.

    h = conv1(SiLU(norm1 x)) with Co/8 channels, gathered per parent (child s -> block s), then
    conv2(SiLU(norm2 h)); the skip gathers x the same way and averages groups of 8 Ci / Co.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = LayerNorm32(in_channels, eps=1e-6)
        self.norm2 = LayerNorm32(out_channels, eps=1e-6, elementwise_affine=False)
        self.conv1 = SparseConv3d(in_channels, out_channels // 8)
        self.conv2 = SparseConv3d(out_channels, out_channels)

    def forward(self, x: SparseTensor) -> SparseTensor:
        h = spatial_to_channel(self.conv1(x.replace(F.silu(self.norm1(x.feats)))))
        skip = spatial_to_channel(x).feats
        skip = skip.reshape(len(skip), self.out_channels, -1).mean(dim=-1)
        out = self.conv2(h.replace(F.silu(self.norm2(h.feats))))
        return out.replace(out.feats + skip)


class SparseUnetVaeDecoder(nn.Module):
    """Latent (T, latent_channels) on the coarse grid -> (M, out_channels) voxels at full resolution."""

    def __init__(self, config: SparseUnetDecoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.model_channels
        self.from_latent = Linear(config.latent_channels, widths[0])
        self.output_layer = Linear(widths[-1], config.out_channels)
        self.blocks = nn.ModuleList()
        for stage, width in enumerate(widths):
            stage_blocks: list[nn.Module] = [
                SparseConvNeXtBlock3d(width) for _ in range(config.num_blocks[stage])
            ]
            if stage < len(widths) - 1:
                stage_blocks.append(
                    SparseResBlockC2S3d(width, widths[stage + 1], config.pred_subdiv)
                )
            self.blocks.append(nn.ModuleList(stage_blocks))

    def _trunk(
        self,
        x: SparseTensor,
        guide_subs: list[torch.Tensor] | None,
        stop_at_stage: int | None = None,
    ) -> tuple[SparseTensor, list[SparseTensor]]:
        if not self.config.pred_subdiv and guide_subs is None:
            raise InputError("this decoder has no subdivision head: pass guide_subs")
        h = x.replace(self.from_latent(x.feats.to(self.from_latent.weight.dtype)))
        h = h.replace(h.feats.to(_dtype(self.blocks)))
        subs: list[SparseTensor] = []
        for stage, stage_blocks in enumerate(self.blocks):
            if stage == stop_at_stage:
                break
            for block in stage_blocks:
                if isinstance(block, SparseResBlockC2S3d):
                    guide = None if guide_subs is None else guide_subs[stage]
                    before = h
                    h, logits = block(h, guide)
                    subs.append(before.replace(logits))
                else:
                    h = block(h)
        return h, subs

    def forward(
        self, x: SparseTensor, guide_subs: list[torch.Tensor] | None = None
    ) -> tuple[SparseTensor, list[SparseTensor]]:
        """Decode a latent.

        Args:
            x: (T, latent_channels) latent.
            guide_subs: for a decoder without ``to_subdiv``: per C2S block, the (T_i, 8)
                subdivision logits to follow (the shape decoder's, rows in level order).

        Returns:
            the output voxels (M, out_channels) in x's dtype, and per C2S block the
            subdivision logits (T_i, 8) on the voxels entering it.
        """
        h, subs = self._trunk(x, guide_subs)
        feats = F.layer_norm(h.feats.to(x.dtype), h.feats.shape[-1:], eps=1e-5)
        out = self.output_layer(feats.to(self.output_layer.weight.dtype)).to(x.dtype)
        return h.replace(out), subs

    def upsample(self, x: SparseTensor, upsample_times: int) -> torch.Tensor:
        """Coordinates (N, 4) int32 after ``upsample_times`` subdivisions (the cascade's structure)."""
        if not self.config.pred_subdiv:
            raise InputError("upsample needs a decoder with a subdivision head")
        h, _ = self._trunk(x, None, stop_at_stage=upsample_times)
        return h.coords


def _dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


class FlexiDualGridVaeDecoder(SparseUnetVaeDecoder):
    """The shape decoder: 7 channels per voxel (dual vertex 3, intersection flags 3, split 1).

    ``forward`` returns the raw voxels and the subdivision logits (the official forward goes
    on to meshes); :meth:`fields` reads the dual grid off the voxels and :meth:`to_meshes`
    extracts one mesh per batch item in the [-0.5, 0.5]^3 cube at ``resolution``.
    """

    def __init__(self, config: FlexiDualGridDecoderConfig) -> None:
        super().__init__(config.unet())
        self.dual_grid = config
        self.resolution = config.resolution
        self.voxel_margin = config.voxel_margin

    def set_resolution(self, resolution: int) -> None:
        self.resolution = resolution

    def fields(self, out: SparseTensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dual vertices (M, 3) in voxel units, intersection flags (M, 3) bool, split weights (M, 1)."""
        feats = out.feats.float()
        margin = self.voxel_margin
        dual = (1 + 2 * margin) * torch.sigmoid(feats[:, 0:3]) - margin
        return dual, feats[:, 3:6] > 0, F.softplus(feats[:, 6:7])

    def to_meshes(self, out: SparseTensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per batch item, vertices (M_i, 3) float32 and faces (F_i, 3) int32 (local indices)."""
        dual, intersected, split = self.fields(out)
        aabb = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
        return [
            flexible_dual_grid_to_mesh(
                out.coords[rows, 1:],
                dual[rows],
                intersected[rows],
                split[rows],
                aabb,
                self.resolution,
            )  # fmt: skip
            for rows in out.layout
        ]


class SparseUnetVaeEncoder(nn.Module):
    """Voxels (N, in_channels) at full resolution -> latent mean and log-variance on the 1/16 grid."""

    def __init__(self, config: SparseUnetEncoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.model_channels
        self.input_layer = Linear(config.in_channels, widths[0])
        self.to_latent = Linear(widths[-1], 2 * config.latent_channels)
        self.blocks = nn.ModuleList()
        for stage, width in enumerate(widths):
            stage_blocks: list[nn.Module] = [
                SparseConvNeXtBlock3d(width) for _ in range(config.num_blocks[stage])
            ]
            if stage < len(widths) - 1:
                stage_blocks.append(SparseResBlockS2C3d(width, widths[stage + 1]))
            self.blocks.append(nn.ModuleList(stage_blocks))

    def forward(self, x: SparseTensor) -> tuple[SparseTensor, SparseTensor]:
        """(mean, logvar), each (T, latent_channels) on the coarse voxels, in x's dtype."""
        h = x.replace(self.input_layer(x.feats.to(self.input_layer.weight.dtype)))
        h = h.replace(h.feats.to(_dtype(self.blocks)))
        for stage_blocks in self.blocks:
            for block in stage_blocks:
                h = block(h)
        feats = F.layer_norm(h.feats.to(x.dtype), h.feats.shape[-1:], eps=1e-5)
        mean, logvar = (
            self.to_latent(feats.to(self.to_latent.weight.dtype)).to(x.dtype).chunk(2, -1)
        )
        return h.replace(mean), h.replace(logvar)


FlexiDualGridVaeEncoder = SparseUnetVaeEncoder
