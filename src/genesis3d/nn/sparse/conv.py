"""Submanifold 3x3x3 sparse convolution: neighbour maps by sorted keys, gather-matmul-scatter.

Semantics (TRELLIS.2 / FlexGEMM): the output voxels are the input voxels, in the same order,
and

    out[p] = bias + sum_{a,b,c in 0..2} W[:, a, b, c, :] @ f[p + (a-1, b-1, c-1)]

over the neighbours present in the same batch item. It is a correlation (no kernel flip),
the first kernel axis is x, and the weight is stored channel-last as (Co, 3, 3, 3, Ci).

Neighbours are found by searching the 27 shifted keys of every voxel among the sorted keys
of the voxel set (``searchsorted``); the map depends on the coordinates only and is cached on
the :class:`SparseTensor`, so every convolution of one level shares it. The convolution then
runs per kernel offset over the (output, input) row pairs that exist: gather the input rows,
multiply by that offset's (Ci, Co) matrix, add into the output rows, in chunks of at most
``chunk_rows`` pairs so no single matmul exceeds that many rows. Products are accumulated in
float32 whatever the feature dtype.

:func:`reference_submanifold_conv3d` is the plain twin: a dense ``conv3d`` on the scattered grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.nn.compute_dtype import matmul
from genesis3d.nn.sparse.tensor import SparseTensor

#: Default bound of the rows of one gathered matmul (large fp32 GEMMs above 2^19 rows have
#: been seen to fail on some GPU stacks; it also bounds the temporary memory).
CHUNK_ROWS = 1 << 19

KERNEL_VOLUME = 27


def kernel_offsets(device: torch.device | None = None) -> torch.Tensor:
    """(27, 3) int64 offsets (dx, dy, dz) in kernel order v = 9 (dx+1) + 3 (dy+1) + (dz+1)."""
    grid = torch.arange(-1, 2, device=device)
    return torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"), dim=-1).reshape(-1, 3)


def voxel_keys(coords: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """(N,) int64 linear keys of (batch, x, y, z) rows in a box of ``extent`` (3,) per axis."""
    c = coords.long()
    return ((c[:, 0] * extent[0] + c[:, 1]) * extent[1] + c[:, 2]) * extent[2] + c[:, 3]


def neighbor_map(coords: torch.Tensor) -> torch.Tensor:
    """Row of each voxel's 27 neighbours, -1 where absent.

    Args:
        coords: (N, 4) int (batch, x, y, z), non-negative, unique rows.

    Returns:
        (N, 27) int64; column v is the offset of :func:`kernel_offsets`.
    """
    count = coords.shape[0]
    if count == 0:
        return torch.empty(0, KERNEL_VOLUME, dtype=torch.long, device=coords.device)
    # Shift by one and pad the box by one voxel on each side: no shifted key wraps around.
    shifted = coords.long().clone()
    shifted[:, 1:] += 1
    extent = shifted[:, 1:].amax(dim=0) + 2
    keys = voxel_keys(shifted, extent)
    sorted_keys, order = torch.sort(keys)
    steps = torch.stack([extent[1] * extent[2], extent[2], torch.ones_like(extent[2])])
    deltas = kernel_offsets(coords.device) @ steps  # (27,)
    query = keys[:, None] + deltas[None, :]
    position = torch.searchsorted(sorted_keys, query).clamp_(max=count - 1)
    found = sorted_keys[position] == query
    return torch.where(found, order[position], torch.full_like(position, -1))


def neighbor_pairs(nmap: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per kernel offset, the (output rows, input rows) pairs that exist: 27 pairs of (P_v,) int64."""
    pairs = []
    for v in range(nmap.shape[1]):
        column = nmap[:, v]
        out_rows = torch.nonzero(column >= 0).squeeze(1)
        pairs.append((out_rows, column[out_rows]))
    return pairs


def submanifold_pairs(x: SparseTensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The cached neighbour pairs of the voxels of ``x`` (built once per coordinate set)."""
    return x.cached("submanifold3_pairs", lambda: neighbor_pairs(neighbor_map(x.coords)))


def submanifold_conv3d(
    feats: torch.Tensor,
    pairs: list[tuple[torch.Tensor, torch.Tensor]],
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Gather-matmul-scatter submanifold convolution.

    Args:
        feats: (N, Ci).
        pairs: from :func:`neighbor_pairs` of these voxels (unique rows, so the centre offset
            pairs each row with itself), one entry per kernel offset.
        weight: (Co, 3, 3, 3, Ci).
        bias: (Co,) or None.
        chunk_rows: most rows of one gathered matmul.

    Returns:
        (N, Co) in the dtype of ``feats`` (accumulated in float32).
    """
    out_channels = weight.shape[0]
    matrices = weight.reshape(out_channels, KERNEL_VOLUME, -1).to(feats.dtype)
    # The centre offset pairs every voxel with itself, in order: a plain matmul starts the sum.
    centre = KERNEL_VOLUME // 2
    out = torch.empty(feats.shape[0], out_channels, dtype=torch.float32, device=feats.device)
    for start in range(0, feats.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        out[rows] = matmul(feats[rows], matrices[:, centre, :].t()).float()
    for v, (out_rows, in_rows) in enumerate(pairs):
        if v == centre:
            continue
        matrix = matrices[:, v, :].t()
        for start in range(0, out_rows.shape[0], chunk_rows):
            rows_out = out_rows[start : start + chunk_rows]
            rows_in = in_rows[start : start + chunk_rows]
            # index_select and index_add_ are the fastest CPU gather and scatter-add (about
            # 30 % less time than advanced indexing and index_put_); each output row appears
            # at most once per offset, so the sums are the same, in the same order.
            gathered = matmul(feats.index_select(0, rows_in), matrix)
            out.index_add_(0, rows_out, gathered.float())
    if bias is not None:
        out += bias.float()
    return out.to(feats.dtype)


def reference_submanifold_conv3d(
    coords: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """The same convolution as a dense ``conv3d`` on the scattered grid (the test oracle).

    Args:
        coords: (N, 4) (batch, x, y, z). feats: (N, Ci). weight: (Co, 3, 3, 3, Ci). bias: (Co,).

    Returns:
        (N, Co) float32.
    """
    c = coords.long()
    batch = int(c[:, 0].max()) + 1
    size = (c[:, 1:].amax(dim=0) + 1).tolist()
    grid = feats.new_zeros(batch, *size, feats.shape[1], dtype=torch.float32)
    grid[c[:, 0], c[:, 1], c[:, 2], c[:, 3]] = feats.float()
    dense = F.conv3d(
        grid.permute(0, 4, 1, 2, 3),
        weight.float().permute(0, 4, 1, 2, 3),
        None if bias is None else bias.float(),
        padding=1,
    )
    return dense.permute(0, 2, 3, 4, 1)[c[:, 0], c[:, 1], c[:, 2], c[:, 3]]


class SparseConv3d(nn.Module):
    """Submanifold 3x3x3 convolution on a :class:`SparseTensor` (keys ``weight``, ``bias``).

    ``weight`` is (Co, 3, 3, 3, Ci), the layout of the official checkpoints.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True
    ):
        super().__init__()
        if kernel_size != 3:
            raise ValueError(
                f"only 3x3x3 submanifold convolutions are supported, got {kernel_size}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, 3, 3, 3, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.chunk_rows = CHUNK_ROWS
        bound = 1 / math.sqrt(in_channels * KERNEL_VOLUME)
        if not self.weight.is_meta:
            nn.init.uniform_(self.weight, -bound, bound)
            if self.bias is not None:
                nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = submanifold_conv3d(
            x.feats, submanifold_pairs(x), self.weight, self.bias, chunk_rows=self.chunk_rows
        )
        return x.replace(out)
