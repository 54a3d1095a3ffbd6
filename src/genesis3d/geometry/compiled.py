"""Compiled mesh kernels (numba) behind the NumPy and SciPy code they speed up.

numba comes with the ``export`` extra. Each kernel here is built on first use
(``cache=True`` keeps the machine code between runs) and has a NumPy or SciPy twin at its
call site that gives the same result; without numba the twins run, and the first call
says so once in the log. Kernels: :func:`union_find_labels` (connected components),
:func:`grouped_order` (a stable sort of per-vertex keys: edges, faces) and
:func:`face_normals_kernel` (unnormalised face normals).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: numba's fallback threading layer (workqueue, where neither OpenMP nor TBB is found)
#: aborts the process when two threads launch parallel kernels at once, as concurrent
#: server jobs would: every parallel kernel runs under this one lock (it uses every core
#: anyway).
PARALLEL_LOCK = threading.Lock()


def serialised(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` (a parallel one) called under :data:`PARALLEL_LOCK`."""

    @functools.wraps(kernel)
    def run(*args: Any) -> Any:
        with PARALLEL_LOCK:
            return kernel(*args)

    return run


__all__ = [
    "PARALLEL_LOCK",
    "face_normals_kernel",
    "grouped_order",
    "numba_available",
    "serialised",
    "union_find_labels",
]

_INSTALL = "pip install 'genesis3d[export]'  (or: pip install numba)"


@functools.cache
def numba_available() -> bool:
    """Whether numba is importable; logs once when it is not."""
    if importlib.util.find_spec("numba") is not None:
        return True
    logger.info(
        "numba is not installed: mesh cleaning runs its NumPy/SciPy code (same results, "
        "several times slower); for speed: %s",
        _INSTALL,
    )
    return False


def _build(builder: Callable[[Any], Callable[..., Any]]) -> Callable[[], Callable[..., Any] | None]:
    """A cached getter of ``builder(numba)``'s kernel, or None without numba."""

    @functools.cache
    def get() -> Callable[..., Any] | None:
        if not numba_available():
            return None
        import numba

        return builder(numba)

    return get


@_build
def union_find_labels(numba: Any) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    """``(rows, cols, count) -> (count,) int32`` labels, numbered by lowest node (scipy's)."""

    @numba.njit(cache=True)
    def labels_of(rows, cols, count):
        # Each root is its component's smallest node: link the larger root under the
        # smaller, with path halving on the way up.
        parent = np.arange(count)
        for k in range(len(rows)):
            a, b = rows[k], cols[k]
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            if a < b:
                parent[b] = a
            elif b < a:
                parent[a] = b
        # Links and halving only ever point a node at a smaller one, so a node's parent
        # comes before it and already holds the label of their common root.
        labels = np.empty(count, np.int32)
        following = 0
        for node in range(count):
            if parent[node] == node:
                labels[node] = following
                following += 1
            else:
                labels[node] = labels[parent[node]]
        return labels

    return labels_of


@_build
def grouped_order(numba: Any) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    """``(first, second, count) -> order``: ``np.lexsort((second, first))`` for ``first``
    in [0, count) (a vertex id) and int64 ``second``.

    A counting sort by ``first`` (stable), then an insertion sort by ``second`` inside each
    vertex's few entries: linear time where the general sort is not.
    """

    @numba.njit(cache=True)
    def order_of(first, second, count):
        starts = np.zeros(count + 1, np.int64)
        for k in range(len(first)):
            starts[first[k] + 1] += 1
        for v in range(count):
            starts[v + 1] += starts[v]
        fill = starts[:-1].copy()
        order = np.empty(len(first), np.int64)
        for k in range(len(first)):
            order[fill[first[k]]] = k
            fill[first[k]] += 1
        for v in range(count):
            for i in range(starts[v] + 1, starts[v + 1]):
                entry = order[i]
                key = second[entry]
                j = i - 1
                while j >= starts[v] and second[order[j]] > key:
                    order[j + 1] = order[j]
                    j -= 1
                order[j + 1] = entry
        return order

    return order_of


@_build
def face_normals_kernel(numba: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(positions, faces) -> (m, 3) float64``, the arithmetic of ``mesh_ops.face_normals``."""

    @numba.njit(parallel=True, cache=True)
    def normals_of(positions, faces):
        normals = np.empty((len(faces), 3), np.float64)
        for f in numba.prange(len(faces)):
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            ax, ay, az = (
                np.float64(positions[a, 0]),
                np.float64(positions[a, 1]),
                np.float64(positions[a, 2]),
            )
            e1x = np.float64(positions[b, 0]) - ax
            e1y = np.float64(positions[b, 1]) - ay
            e1z = np.float64(positions[b, 2]) - az
            e2x = np.float64(positions[c, 0]) - ax
            e2y = np.float64(positions[c, 1]) - ay
            e2z = np.float64(positions[c, 2]) - az
            normals[f, 0] = e1y * e2z - e1z * e2y
            normals[f, 1] = e1z * e2x - e1x * e2z
            normals[f, 2] = e1x * e2y - e1y * e2x
        return normals

    return serialised(normals_of)
