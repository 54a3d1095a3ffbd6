"""The k nearest face centroids of many points: a compiled search of a uniform grid.

The compiled twin of a scipy ``cKDTree.query(points, k)`` over the centroids, for the
bake's surface projection (:mod:`genesis3d.geometry.projection`): same neighbours, in
ascending (distance, face id) order. Centroids are bucketed in cubic cells of about three
faces' width; a point's search visits rings of cells around its own, skips every cell
whose box lies farther than the k-th neighbour found so far, and stops once no unvisited
cell can hold a nearer one. Points more than a few rings from every centroid (far off the
surface) are handed to the k-d tree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from genesis3d.geometry.compiled import KERNEL_LOCK

__all__ = ["CentroidGrid"]

#: rings of cells searched around a point before it is handed to the k-d tree
MAX_RING = 6
#: points per work item of the parallel loop (their scratch arrays are allocated once)
_CHUNK = 1024


@functools.cache
def _nearest_kernel() -> Callable[..., None]:
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def nearest(  # noqa: PLR0912, PLR0915
        query, centres, ids, cell_z, cell_start, column_start, origin, cell, slack, dims,
        max_ring, near,
    ):  # fmt: skip
        count, wanted = near.shape
        last = wanted - 1

        def gap(value, low, cell, slack):
            # Distance along one axis from ``value`` to the cell [low, low + cell), less
            # a slack that covers the rounding of the centroids' cell assignment. (An
            # inner function: a jitted helper captured from outside would keep numba
            # from caching the kernel.)
            outside = max(low - value, value - (low + cell), 0.0)
            return max(outside - slack, 0.0)

        for chunk in numba.prange((count + _CHUNK - 1) // _CHUNK):
            best = np.empty(wanted)
            best_id = np.empty(wanted, np.int64)
            homes = np.empty(3, np.int64)
            for i in range(chunk * _CHUNK, min(count, (chunk + 1) * _CHUNK)):
                best[:] = np.inf
                best_id[:] = -1
                found = 0
                qx, qy, qz = query[i, 0], query[i, 1], query[i, 2]
                hx = np.int64(np.floor((qx - origin[0]) / cell))
                hy = np.int64(np.floor((qy - origin[1]) / cell))
                hz = np.int64(np.floor((qz - origin[2]) / cell))
                homes[0], homes[1], homes[2] = hx, hy, hz
                ring = 0
                while True:
                    if ring > max_ring:
                        near[i, 0] = -1
                        break
                    for x in range(max(hx - ring, 0), min(hx + ring + 1, dims[0])):
                        gx = gap(qx, origin[0] + x * cell, cell, slack)
                        for y in range(max(hy - ring, 0), min(hy + ring + 1, dims[1])):
                            gy = gap(qy, origin[1] + y * cell, cell, slack)
                            if found >= wanted and gx * gx + gy * gy > best[last]:
                                continue
                            side = max(abs(x - hx), abs(y - hy)) == ring
                            column = x * dims[1] + y
                            for slot in range(column_start[column], column_start[column + 1]):
                                z = cell_z[slot]
                                if z > hz + ring:
                                    break
                                if z < hz - ring or not (side or abs(z - hz) == ring):
                                    continue
                                if found >= wanted:
                                    gz = gap(qz, origin[2] + z * cell, cell, slack)
                                    if gx * gx + gy * gy + gz * gz > best[last]:
                                        continue
                                for j in range(cell_start[slot], cell_start[slot + 1]):
                                    dx = centres[j, 0] - qx
                                    dy = centres[j, 1] - qy
                                    dz = centres[j, 2] - qz
                                    distance = dx * dx + dy * dy + dz * dz
                                    face = ids[j]
                                    if distance > best[last] or (
                                        distance == best[last] and face > best_id[last]
                                    ):
                                        continue
                                    # Insert, keeping (distance, face id) ascending.
                                    k = last
                                    while k > 0 and (
                                        best[k - 1] > distance
                                        or (best[k - 1] == distance and best_id[k - 1] > face)
                                    ):
                                        best[k] = best[k - 1]
                                        best_id[k] = best_id[k - 1]
                                        k -= 1
                                    best[k] = distance
                                    best_id[k] = face
                                    found += 1
                    # Every centre not visited yet lies outside the searched block of cells.
                    reach = np.inf
                    everything = True
                    for axis in range(3):
                        value, home = query[i, axis], homes[axis]
                        low = value - (origin[axis] + (home - ring) * cell)
                        high = origin[axis] + (home + ring + 1) * cell - value
                        reach = min(reach, low - slack, high - slack)
                        if home - ring > 0 or home + ring < dims[axis] - 1:
                            everything = False
                    if everything or (
                        found >= wanted and reach > 0 and best[last] <= reach * reach
                    ):
                        break
                    ring += 1
                if ring <= max_ring:
                    for k in range(wanted):
                        near[i, k] = best_id[k]

    return nearest


class CentroidGrid:
    """Face centroids bucketed in a uniform grid of cubic cells, searched by a compiled loop.

    Args:
        centres: (m, 3) float64 face centroids.
        areas: (m,) float face areas (they set the cell size).
    """

    #: cells per face width: the k nearest of 8 are nearly always within the cell and
    #: its neighbours, most of which the box test skips.
    CELL_WIDTHS = 3.0

    def __init__(self, centres: np.ndarray, areas: np.ndarray) -> None:
        centres = np.ascontiguousarray(centres, np.float64)
        low, high = centres.min(axis=0), centres.max(axis=0)
        extent = float((high - low).max())
        cell = self.CELL_WIDTHS * float(np.sqrt(max(float(np.mean(areas)), 0.0)))
        # Not more (x, y) columns than a few per centroid: the column table stays small
        # whatever the faces' sizes (a coarser grid only costs time, never changes the
        # neighbours found).
        columns_cap = 4 * len(centres) + 1024
        floor_cell = extent / np.sqrt(columns_cap) if extent > 0 else 1.0
        if not cell > floor_cell:
            cell = max(floor_cell, 1e-300) if extent > 0 else 1.0
        dims = np.maximum(np.floor((high - low) / cell).astype(np.int64) + 1, 1)
        index = np.minimum(np.floor((centres - low) / cell).astype(np.int64), dims - 1)
        keys = (index[:, 0] * dims[1] + index[:, 1]) * dims[2] + index[:, 2]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        new = np.ones(len(keys), bool)
        new[1:] = keys[1:] != keys[:-1]
        cell_keys = keys[new]
        self.cell_z = cell_keys % dims[2]
        self.cell_start = np.append(np.flatnonzero(new), len(keys)).astype(np.int64)
        counts = np.bincount(cell_keys // dims[2], minlength=int(dims[0] * dims[1]))
        self.column_start = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=self.column_start[1:])
        self.centres = np.ascontiguousarray(centres[order])
        self.ids = order.astype(np.int64)
        self.origin, self.cell, self.dims = low, cell, dims
        # Centroids may sit this far outside their cell's box through the rounding of
        # (centre - origin) / cell; the box tests allow for it.
        self.slack = 1e-9 * cell + 1e-12 * float(np.abs(np.concatenate([low, high])).max())
        self._tree = None

    def query(self, points: np.ndarray, count: int) -> np.ndarray:
        """The ``count`` nearest centres of (k, 3) float64 points: (k, count) int64 face ids.

        Ordered by (distance, face id) ascending.
        """
        near = np.empty((len(points), count), np.int64)
        points = np.ascontiguousarray(points, np.float64)
        with KERNEL_LOCK:
            _nearest_kernel()(
                points,
                self.centres,
                self.ids,
                self.cell_z,
                self.cell_start,
                self.column_start,
                self.origin,
                self.cell,
                self.slack,
                self.dims,
                MAX_RING,
                near,
            )
        far = np.flatnonzero(near[:, 0] < 0)
        if len(far):
            # The search stops after MAX_RING rings (its cost grows with the cube of the
            # ring); the few points beyond go to a k-d tree, the NumPy path's search.
            from scipy.spatial import cKDTree

            if self._tree is None:
                self._tree = cKDTree(self.centres)
            _, index = self._tree.query(points[far], k=count)
            near[far] = self.ids[np.asarray(index).reshape(len(far), count)]
        return near
