"""A batch of sparse voxel sets: integer coordinates, features, and per-item row ranges.

Rows of one batch item are contiguous and items come in increasing order, so an item is a
row range (``layout``) and no padding is ever needed. Structures derived from the
coordinates alone (neighbour maps, rotary angles, subdivision plans) are cached on the
tensor and shared by every tensor made with :meth:`SparseTensor.replace`, since those keep
the coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from genesis3d.errors import InputError


class SparseTensor:
    """Features on active voxels of a batch of grids.

    Attributes:
        coords: (N, 4) int32 rows (batch, x, y, z); rows of one item contiguous, items in order.
        feats: (N, ...) features, row i on voxel coords[i].
        layout: per item, the slice of its rows (``len(layout)`` is the batch size).
    """

    def __init__(
        self,
        coords: torch.Tensor,
        feats: torch.Tensor,
        *,
        layout: list[slice] | None = None,
        cache: dict[Any, Any] | None = None,
    ) -> None:
        if coords.dim() != 2 or coords.shape[1] != 4:
            raise InputError(
                f"sparse coords must be (N, 4) (batch, x, y, z), got {tuple(coords.shape)}"
            )
        if feats.shape[0] != coords.shape[0]:
            raise InputError(
                f"sparse feats must have one row per coordinate ({coords.shape[0]}), got {feats.shape[0]}"
            )
        self.coords = coords.to(torch.int32)
        self.feats = feats
        self.layout = layout if layout is not None else batch_layout(self.coords[:, 0])
        self._cache: dict[Any, Any] = cache if cache is not None else {}

    @property
    def batch_size(self) -> int:
        return len(self.layout)

    @property
    def lengths(self) -> list[int]:
        """Rows per batch item."""
        return [item.stop - item.start for item in self.layout]

    @property
    def device(self) -> torch.device:
        return self.feats.device

    @property
    def dtype(self) -> torch.dtype:
        return self.feats.dtype

    def __len__(self) -> int:
        return self.coords.shape[0]

    def replace(self, feats: torch.Tensor) -> SparseTensor:
        """The same voxels (and cached structures) with other features."""
        return SparseTensor(self.coords, feats, layout=self.layout, cache=self._cache)

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """A structure derived from the coordinates, built once per coordinate set."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def batch_index(self) -> torch.Tensor:
        """(N,) int64 batch item of each row."""
        return self.cached("batch_index", lambda: self.coords[:, 0].long())

    def __repr__(self) -> str:
        return (
            f"SparseTensor(rows={len(self)}, batch={self.batch_size}, "
            f"feats={tuple(self.feats.shape)}, dtype={self.feats.dtype})"
        )


def batch_layout(batch: torch.Tensor) -> list[slice]:
    """Row slices of each batch item from the (N,) batch column (items contiguous, in order).

    Raises:
        InputError: rows of an item are not contiguous or items are not in increasing order.
    """
    if batch.numel() == 0:
        return []
    batch = batch.long()
    if bool((batch[1:] < batch[:-1]).any()) or int(batch[0]) < 0:
        raise InputError(
            "sparse rows must be grouped by batch item in increasing order; sort the coordinates"
        )
    counts = torch.bincount(batch).tolist()
    layout, start = [], 0
    for count in counts:
        layout.append(slice(start, start + count))
        start += count
    return layout


def sparse_cat(tensors: list[SparseTensor]) -> SparseTensor:
    """Concatenate the features of tensors on the same voxels along the channel axis."""
    first = tensors[0]
    for other in tensors[1:]:
        if other.coords.shape != first.coords.shape or not torch.equal(other.coords, first.coords):
            raise InputError("sparse_cat needs tensors on identical coordinates (same rows)")
    return first.replace(torch.cat([t.feats for t in tensors], dim=-1))


def per_item(
    values: torch.Tensor, layout: list[slice], fn: Callable[[torch.Tensor, int], torch.Tensor]
) -> torch.Tensor:
    """Apply ``fn(rows, item)`` to the rows of each batch item; the results are concatenated."""
    if len(layout) == 1:
        return fn(values, 0)
    return torch.cat([fn(values[rows], item) for item, rows in enumerate(layout)], dim=0)
