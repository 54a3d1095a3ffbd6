"""Factor-2 resolution changes of sparse voxel sets: subdivision, pooling, space <-> channels.

Child index of a voxel inside its parent: s = (x mod 2) + 2 (y mod 2) + 4 (z mod 2), so x is
the least significant bit. Subdivision creates children parent by parent (in the parents'
order), then by ascending s; this order fixes the row order of every finer level.
"""

from __future__ import annotations

import torch

from genesis3d.errors import InputError
from genesis3d.nn.sparse.tensor import SparseTensor, batch_layout


def child_offsets(device: torch.device | None = None) -> torch.Tensor:
    """(8, 3) int64 (dx, dy, dz) of child s = dx + 2 dy + 4 dz."""
    s = torch.arange(8, device=device)
    return torch.stack([s & 1, (s >> 1) & 1, (s >> 2) & 1], dim=1)


def subdivide(coords: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Children of the voxels selected by a mask, parent-major then by child index.

    Args:
        coords: (P, 4) int (batch, x, y, z) parents.
        mask: (P, 8) bool, which children exist.

    Returns:
        child coords (C, 4) int32 and flat index (C,) int64 = 8 parent + s into (P * 8) slots.
    """
    if mask.shape != (coords.shape[0], 8):
        raise InputError(
            f"subdivision mask must be ({coords.shape[0]}, 8), got {tuple(mask.shape)}"
        )
    parent, child = torch.nonzero(mask, as_tuple=True)
    offsets = child_offsets(coords.device)[child]
    c = coords[parent].long()
    children = torch.cat([c[:, :1], c[:, 1:] * 2 + offsets], dim=1).to(torch.int32)
    return children, parent * 8 + child


def channel_to_spatial(x: SparseTensor, mask: torch.Tensor) -> SparseTensor:
    """Split each voxel's channels into 8 children of C/8 channels (channel block s -> child s).

    Args:
        x: (P, C) features with C divisible by 8.
        mask: (P, 8) bool: children to create.

    Returns:
        A tensor on the children (see the module docstring for their order) with C/8 channels.
    """
    channels = x.feats.shape[1]
    if channels % 8:
        raise InputError(f"channel_to_spatial needs channels divisible by 8, got {channels}")
    coords, flat = subdivide(x.coords, mask)
    return SparseTensor(coords, split_channels(x.feats, flat))


def split_channels(feats: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Child features of :func:`subdivide`'s flat slots: (P, C) -> (len(flat), C / 8)."""
    return feats.reshape(-1, feats.shape[1] // 8)[flat]


def upsample(x: SparseTensor, mask: torch.Tensor) -> SparseTensor:
    """Nearest subdivision: each created child copies its parent's features."""
    coords, flat = subdivide(x.coords, mask)
    return SparseTensor(coords, x.feats[flat // 8])


def parent_plan(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Parents of a voxel set, sorted lexicographically by (batch, x, y, z).

    Returns:
        parent coords (P, 4) int32, parent row (N,) int64 of each voxel, child index (N,) int64.
    """
    c = coords.long()
    halves = torch.cat([c[:, :1], c[:, 1:] // 2], dim=1)
    extent = halves[:, 1:].amax(dim=0) + 1
    keys = ((halves[:, 0] * extent[0] + halves[:, 1]) * extent[1] + halves[:, 2]) * extent[
        2
    ] + halves[:, 3]
    unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    parents = torch.empty(unique_keys.shape[0], 4, dtype=torch.long, device=coords.device)
    parents[inverse] = halves
    child = (c[:, 1] & 1) + 2 * (c[:, 2] & 1) + 4 * (c[:, 3] & 1)
    return parents.to(torch.int32), inverse, child


def spatial_to_channel(x: SparseTensor) -> SparseTensor:
    """Gather each parent's 8 children into channel blocks (child s -> block s; absent = 0).

    Returns:
        A tensor on the parents (sorted by (batch, x, y, z)) with 8 C channels.
    """
    parents, inverse, child = x.cached("parent_plan", lambda: parent_plan(x.coords))
    channels = x.feats.shape[1]
    out = x.feats.new_zeros(parents.shape[0] * 8, channels)
    out[inverse * 8 + child] = x.feats
    return SparseTensor(
        parents, out.reshape(parents.shape[0], 8 * channels), layout=batch_layout(parents[:, 0])
    )


def downsample(x: SparseTensor, reduce: str = "mean") -> SparseTensor:
    """Pool children into their parents (``reduce`` = "mean" or "amax") on sorted parents."""
    if reduce not in ("mean", "amax"):
        raise InputError(f"downsample reduce must be mean or amax, got {reduce!r}")
    parents, inverse, _ = x.cached("parent_plan", lambda: parent_plan(x.coords))
    index = inverse[:, None].expand_as(x.feats)
    out = x.feats.new_zeros(parents.shape[0], *x.feats.shape[1:])
    out = out.scatter_reduce(0, index, x.feats, reduce=reduce, include_self=False)
    return SparseTensor(parents, out)
