"""Normalisation of sparse features: per voxel over channels, or per batch item over voxels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.nn.norms import layer_norm_fp32
from genesis3d.nn.sparse.tensor import SparseTensor, per_item


class SparseLayerNorm32(nn.LayerNorm):
    """LayerNorm over each voxel's channels, in float32 (parameters of ``nn.LayerNorm``)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace(layer_norm_fp32(x.feats, self.eps, self.weight, self.bias))


class SparseGroupNorm32(nn.GroupNorm):
    """GroupNorm of each batch item over all its voxels, in float32 (parameters of ``nn.GroupNorm``).

    Statistics of one item never mix with another's, whatever the other items' sizes.
    """

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        def norm(rows: torch.Tensor, _item: int) -> torch.Tensor:
            # (T, C) -> (1, C, T): one GroupNorm sample per item.
            out = F.group_norm(
                rows.float().t()[None],
                self.num_groups,
                None if self.weight is None else self.weight.float(),
                None if self.bias is None else self.bias.float(),
                self.eps,
            )
            return out[0].t().to(rows.dtype)

        return x.replace(per_item(x.feats, x.layout, norm))


def item_population_std(values: torch.Tensor, layout: list[slice]) -> torch.Tensor:
    """sqrt(E[x^2] - E[x]^2) over all rows and channels of each item: (B,) float32."""
    stds = []
    for rows in layout:
        item = values[rows].float()
        stds.append((item.square().mean() - item.mean().square()).sqrt())
    return torch.stack(stds)
