"""Attribute sources: where a surface's colour and material come from before baking.

Every source answers one question, "what are the attribute values at these surface
points?", through :meth:`AttributeSource.sample` on a :class:`SurfacePoints`. Three kinds:

- :class:`SparseVoxelAttributes`: a sparse voxel grid (TRELLIS.2's PBR volume), sampled
  trilinearly with the official semantics of ``flex_gemm`` ``grid_sample_3d``: voxel ``i``
  spans ``[i, i + 1)`` in grid units with its centre at ``i + 0.5``, the 8 surrounding
  voxel centres weigh ``prod(1 - |g - c - 0.5|)``, voxels that do not exist weigh 0 and the
  weights are renormalised over the voxels that do.
- :class:`VertexAttributes`: per-vertex values, interpolated with barycentrics.
- :class:`FieldAttributes`: any callable ``positions -> values``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.compiled import KERNEL_LOCK, Backend, use_numba

logger = logging.getLogger(__name__)

#: Query points handled per block by the voxel sampler (bounds temporary memory to a few
#: hundred MB whatever the number of points).
_BLOCK = 1 << 20
#: Largest ``resolution ** 2`` for which the compiled sampler keeps a table of where each
#: (x, y) column of voxels starts among the sorted keys (8 bytes per column: 32 MB at
#: 2048^2); finer grids search all the keys.
_COLUMN_TABLE_LIMIT = 1 << 22


@dataclass(frozen=True)
class SurfacePoints:
    """Points on a triangle mesh's surface.

    Attributes:
        positions: (k, 3) float32 positions.
        face_ids: (k,) int64 face of each point, or None when unknown.
        barycentrics: (k, 3) float32 barycentric coordinates in that face, or None.
    """

    positions: np.ndarray
    face_ids: np.ndarray | None = None
    barycentrics: np.ndarray | None = None


@runtime_checkable
class AttributeSource(Protocol):
    """Something that gives ``channels`` attribute values at surface points."""

    @property
    def channels(self) -> int:
        """Number of values per point."""
        ...

    def sample(self, points: SurfacePoints) -> np.ndarray:
        """Values at ``points``: (k, channels) float32."""
        ...


def _check_positions(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(
            f"query positions must have shape (k, 3), got {positions.shape}; pass one xyz row per point"
        )
    return positions


class SparseVoxelAttributes:
    """A sparse voxel grid of attributes, sampled trilinearly over the voxels that exist.

    Grid coordinates of a world point ``p`` are ``g = (p - bounds[0]) / voxel_size`` with
    ``voxel_size = (bounds[1] - bounds[0]) / resolution``; voxel ``i`` has its centre at
    ``i + 0.5``. A point whose 8 surrounding voxel centres all miss (or weigh 0) gets the
    value chosen by ``missing``:

    - ``"zero"`` (the official TRELLIS.2 result): zeros;
    - ``"nearest"``: the values of the voxel whose centre is nearest to the point.

    Lookups go through the sorted linear keys ``(x * R + y) * R + z`` and
    ``np.searchsorted``, four searches per point (the ``z + 1`` neighbour of a key sits
    right after it in the sorted keys when it exists), with the query points sorted by key
    first so each search walks forward. With numba installed a compiled parallel loop does
    the same arithmetic per point, searching only the keys of the point's (x, y) column of
    voxels; both give the same values.

    Args:
        coords: (n, 3) int voxel coordinates (x, y, z) in ``[0, resolution)``, unique.
        values: (n, c) float per-voxel attributes.
        resolution: voxels per axis.
        bounds: (2, 3) float world box [[min x, y, z], [max x, y, z]] that the grid spans;
            TRELLIS.2's is [[-0.5] * 3, [0.5] * 3].
        missing: value of points with no existing neighbour, "zero" or "nearest".
        backend: "numba" (compiled, needs numba), "numpy", or "auto": numba when
            installed, else NumPy with a log line. Both give the same values.

    Raises:
        InputError: on bad shapes, coordinates out of range or repeated coordinates.
        ConfigError: on a bad resolution, bounds or ``missing``.
    """

    def __init__(
        self,
        coords: np.ndarray,
        values: np.ndarray,
        resolution: int,
        bounds: np.ndarray | tuple = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5)),
        *,
        missing: Literal["zero", "nearest"] = "zero",
        backend: Backend = "auto",
    ) -> None:
        coords = np.asarray(coords)
        values = np.asarray(values)
        if coords.ndim != 2 or coords.shape[1] != 3 or not np.issubdtype(coords.dtype, np.integer):
            raise InputError(
                f"voxel coords must be an (n, 3) integer array, got shape {coords.shape} dtype {coords.dtype}; "
                "pass integer (x, y, z) voxel indices"
            )
        if values.ndim != 2 or len(values) != len(coords):
            raise InputError(
                f"voxel values must have shape ({len(coords)}, c), got {values.shape}; pass one row per voxel"
            )
        if not isinstance(resolution, int | np.integer) or resolution < 1 or resolution > 2**20:
            raise ConfigError(
                f"resolution must be an integer in [1, 2**20], got {resolution!r}; pass the grid size (e.g. 1024)"
            )
        bounds = np.asarray(bounds, np.float64)
        if bounds.shape != (2, 3) or not (bounds[1] > bounds[0]).all():
            raise ConfigError(
                f"bounds must be [[min x, y, z], [max x, y, z]] with max > min, got {bounds.tolist()}; "
                "pass the box the grid spans, e.g. [[-0.5] * 3, [0.5] * 3]"
            )
        if missing not in ("zero", "nearest"):
            raise ConfigError(f'missing must be "zero" or "nearest", got {missing!r}')
        if len(coords) and (coords.min() < 0 or coords.max() >= resolution):
            raise InputError(
                f"voxel coords must lie in [0, {resolution}), got [{coords.min()}, {coords.max()}]; "
                "check the resolution the grid was decoded at"
            )
        self.resolution = int(resolution)
        self.bounds = bounds
        self.voxel_size = (bounds[1] - bounds[0]) / resolution
        self.missing = missing
        self.backend = backend
        use_numba(backend, "SparseVoxelAttributes.sample")  # checks the name early
        self.values = values
        self.coords = coords.astype(np.int64)
        keys = self._keys(self.coords)
        self._order = np.argsort(keys, kind="stable")
        self._keys_sorted = keys[self._order]
        if len(keys) > 1 and (np.diff(self._keys_sorted) == 0).any():
            repeats = int((np.diff(self._keys_sorted) == 0).sum())
            raise InputError(
                f"voxel coords must be unique, got {repeats} repeated; merge the repeats first"
            )
        # One sentinel past the end so index + 1 is always valid.
        self._keys_padded = np.append(self._keys_sorted, np.iinfo(np.int64).max)
        self._tree = None
        self._column_starts: np.ndarray | None = None

    @property
    def channels(self) -> int:
        """Number of values per voxel."""
        return int(self.values.shape[1])

    def _keys(self, cell: np.ndarray) -> np.ndarray:
        resolution = np.int64(self.resolution)
        return (cell[:, 0] * resolution + cell[:, 1]) * resolution + cell[:, 2]

    def sample(self, points: SurfacePoints) -> np.ndarray:
        """Trilinear values at ``points.positions`` ((k, 3)): (k, c) float32."""
        return self.sample_positions(points.positions)

    def sample_positions(self, positions: np.ndarray) -> np.ndarray:
        """Trilinear values at world positions.

        Args:
            positions: (k, 3) float world positions.

        Returns:
            (k, c) float32 values.
        """
        positions = _check_positions(positions)
        out = np.zeros((len(positions), self.channels), np.float32)
        empty = np.zeros(len(positions), bool)
        if len(self._keys_sorted) == 0:
            empty[:] = True
        elif use_numba(self.backend, "SparseVoxelAttributes.sample"):
            self._sample_compiled(np.asarray(positions, np.float64), out, empty)
        else:
            for begin in range(0, len(positions), _BLOCK):
                block = slice(begin, begin + _BLOCK)
                out[block], empty[block] = self._sample_block(positions[block])
        if self.missing == "nearest" and empty.any() and len(self._keys_sorted):
            out[empty] = self._nearest(positions[empty])
        return out

    def _sample_block(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grid = (np.asarray(positions, np.float64) - self.bounds[0]) / self.voxel_size - 0.5
        base = np.floor(grid)
        frac = grid - base  # weight of the upper corner along each axis
        base = base.astype(np.int64)
        resolution = self.resolution
        # Searching sorted needles is about 10x faster than random ones (the search keeps
        # its place), and every corner key is the base key plus a constant: sort once.
        order = np.argsort(self._keys(base), kind="stable")
        base, frac = base[order], frac[order]
        total = np.zeros(len(positions))
        accumulated = np.zeros((len(positions), self.channels))
        z0, z1 = base[:, 2], base[:, 2] + 1
        wz = (1.0 - frac[:, 2], frac[:, 2])
        for dx in (0, 1):
            x = base[:, 0] + dx
            wx = frac[:, 0] if dx else 1.0 - frac[:, 0]
            for dy in (0, 1):
                y = base[:, 1] + dy
                wxy = wx * (frac[:, 1] if dy else 1.0 - frac[:, 1])
                column = (x >= 0) & (x < resolution) & (y >= 0) & (y < resolution)
                key = (x * resolution + y) * resolution + z0
                index = np.searchsorted(self._keys_sorted, key)
                # The z0 voxel is at ``index`` if present; the z0 + 1 voxel is then at
                # ``index + 1``, or at ``index`` when z0 is absent.
                hit0 = column & (z0 >= 0) & (self._keys_padded[index] == key)
                after = index + hit0
                hit1 = column & (z1 < resolution) & (self._keys_padded[after] == key + 1)
                for hit, where, weight_z in ((hit0, index, wz[0]), (hit1, after, wz[1])):
                    weight = np.where(hit, wxy * weight_z, 0.0)
                    rows = np.flatnonzero(weight > 0.0)
                    total[rows] += weight[rows]
                    voxel = self._order[where[rows]]
                    accumulated[rows] += weight[rows, None] * self.values[voxel]
        result = np.empty((len(positions), self.channels), np.float32)
        result[order] = accumulated / np.maximum(total, 1e-12)[:, None]
        empty = np.empty(len(positions), bool)
        empty[order] = total <= 0.0
        return result, empty

    def _sample_compiled(self, positions: np.ndarray, out: np.ndarray, empty: np.ndarray) -> None:
        """:meth:`_sample_block`'s arithmetic as one compiled loop, into ``out`` and ``empty``."""
        resolution = self.resolution
        if self._column_starts is None:
            if resolution * resolution <= _COLUMN_TABLE_LIMIT:
                columns = self._keys_sorted // resolution
                counts = np.bincount(columns, minlength=resolution * resolution)
                starts = np.zeros(resolution * resolution + 1, np.int64)
                np.cumsum(counts, out=starts[1:])
            else:
                starts = np.zeros(0, np.int64)
            self._column_starts = starts
        values = self.values
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        with KERNEL_LOCK:
            _voxel_sampler()(
                np.ascontiguousarray(positions),
                self.bounds[0].copy(),
                np.asarray(self.voxel_size, np.float64),
                resolution,
                self._keys_sorted,
                self._column_starts,
                self._order,
                np.ascontiguousarray(values),
                out,
                empty,
            )

    def _nearest(self, positions: np.ndarray) -> np.ndarray:
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree((self.coords + 0.5) * self.voxel_size + self.bounds[0])
        _, index = self._tree.query(np.asarray(positions, np.float64))
        return self.values[index].astype(np.float32)


@functools.cache
def _voxel_sampler():
    """The compiled twin of :meth:`SparseVoxelAttributes._sample_block`, per point."""
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def sample(positions, low, voxel_size, resolution, keys, starts, order, values, out, empty):  # noqa: PLR0912
        count, channels = out.shape
        block = 4096
        for chunk in numba.prange((count + block - 1) // block):
            accumulated = np.empty(channels)
            for i in range(chunk * block, min(count, (chunk + 1) * block)):
                gx = (positions[i, 0] - low[0]) / voxel_size[0] - 0.5
                gy = (positions[i, 1] - low[1]) / voxel_size[1] - 0.5
                gz = (positions[i, 2] - low[2]) / voxel_size[2] - 0.5
                bx, by, bz = np.floor(gx), np.floor(gy), np.floor(gz)
                fx, fy, fz = gx - bx, gy - by, gz - bz
                x0, y0, z0 = np.int64(bx), np.int64(by), np.int64(bz)
                total = 0.0
                accumulated[:] = 0.0
                # Corners in the order of the NumPy twin, so the sums round the same way.
                for dx in range(2):
                    x = x0 + dx
                    wx = fx if dx else 1.0 - fx
                    for dy in range(2):
                        y = y0 + dy
                        wxy = wx * (fy if dy else 1.0 - fy)
                        if x < 0 or x >= resolution or y < 0 or y >= resolution:
                            continue
                        column = x * resolution + y
                        key = column * resolution + z0
                        if len(starts):
                            first, last = starts[column], starts[column + 1]
                        else:
                            first, last = 0, len(keys)
                        index = first + np.searchsorted(keys[first:last], key)
                        hit0 = z0 >= 0 and index < last and keys[index] == key
                        after = index + 1 if hit0 else index
                        hit1 = z0 + 1 < resolution and after < last and keys[after] == key + 1
                        for corner in range(2):
                            if corner == 0:
                                hit, where, weight = hit0, index, wxy * (1.0 - fz)
                            else:
                                hit, where, weight = hit1, after, wxy * fz
                            if not hit or not weight > 0.0:
                                continue
                            total += weight
                            voxel = order[where]
                            for c in range(channels):
                                accumulated[c] += weight * np.float64(values[voxel, c])
                scale = max(total, 1e-12)
                for c in range(channels):
                    out[i, c] = accumulated[c] / scale
                empty[i] = total <= 0.0

    return sample


class VertexAttributes:
    """Per-vertex attributes of a mesh, interpolated with the barycentrics of each point.

    Args:
        faces: (m, 3) int faces of the mesh the points lie on.
        values: (n, c) float per-vertex attributes.
    """

    def __init__(self, faces: np.ndarray, values: np.ndarray) -> None:
        faces = np.asarray(faces)
        values = np.asarray(values)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise InputError(f"faces must have shape (m, 3), got {faces.shape}")
        if values.ndim != 2:
            raise InputError(
                f"vertex values must have shape (n, c), got {values.shape}; pass one row per vertex"
            )
        if len(faces) and (faces.min() < 0 or faces.max() >= len(values)):
            raise InputError(
                f"faces index vertices in [0, {len(values)}), got [{faces.min()}, {faces.max()}]; "
                "pass the faces of the mesh the values belong to"
            )
        self.faces = faces
        self.values = values

    @property
    def channels(self) -> int:
        """Number of values per vertex."""
        return int(self.values.shape[1])

    def sample(self, points: SurfacePoints) -> np.ndarray:
        """Barycentric interpolation: needs ``face_ids`` (k,) and ``barycentrics`` (k, 3)."""
        if points.face_ids is None or points.barycentrics is None:
            raise InputError(
                "per-vertex attributes need face ids and barycentrics, got positions only; "
                "project the points onto the source mesh first"
            )
        face_ids = np.asarray(points.face_ids, np.int64)
        weights = np.asarray(points.barycentrics, np.float64)
        if weights.shape != (len(face_ids), 3):
            raise InputError(
                f"barycentrics must have shape ({len(face_ids)}, 3), got {weights.shape}"
            )
        corners = self.values[self.faces[face_ids]].astype(np.float64)  # (k, 3, c)
        return np.einsum("kj,kjc->kc", weights, corners).astype(np.float32)


@dataclass(frozen=True)
class FieldAttributes:
    """Attributes from any function of position.

    Attributes:
        function: maps (k, 3) float32 positions to (k, channels) values.
        channels: number of values per point.
    """

    function: Callable[[np.ndarray], np.ndarray]
    channels: int

    def sample(self, points: SurfacePoints) -> np.ndarray:
        """``function(points.positions)``, checked: (k, channels) float32."""
        positions = _check_positions(points.positions)
        values = np.asarray(self.function(positions.astype(np.float32)), np.float32)
        if values.shape != (len(positions), self.channels):
            raise InputError(
                f"the attribute function must return shape ({len(positions)}, {self.channels}), "
                f"got {values.shape}; return one row of {self.channels} values per point"
            )
        return values
