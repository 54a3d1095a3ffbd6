"""The choice between compiled (numba) kernels and their NumPy twins, made once per call.

Every compiled kernel of :mod:`genesis3d.geometry` has a NumPy twin that gives the same
result; numba (the ``export`` extra) only changes the speed. A caller passes a
:data:`Backend`: ``"numba"`` demands the compiled kernel, ``"numpy"`` the twin, and
``"auto"`` takes numba when it is installed and otherwise logs, once per operation, that
the slower twin runs.

Kernels of the mesh-cleaning stages live here too, each behind :func:`_build` (built on
first use, ``cache=True`` keeping the machine code between runs; None without numba, and
the call site runs its NumPy or SciPy twin): :func:`union_find_labels` (connected
components), :func:`grouped_order` (a stable sort of per-vertex keys: edges, faces) and
:func:`face_normals_kernel` (unnormalised face normals).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from genesis3d.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

__all__ = [
    "KERNEL_LOCK",
    "NUMBA_INSTALL",
    "Backend",
    "face_normals_kernel",
    "grouped_order",
    "serialised",
    "union_find_labels",
    "use_numba",
]

Backend = Literal["auto", "numba", "numpy"]

#: numba's fallback threading layer (workqueue, where neither OpenMP nor TBB is found)
#: aborts the process when two threads launch parallel kernels at once, as concurrent
#: server jobs would: parallel kernels run under this lock (each uses every core anyway).
KERNEL_LOCK = threading.Lock()
NUMBA_INSTALL = "pip install 'genesis3d[export]'  (or: pip install numba)"


def use_numba(backend: Backend, operation: str) -> bool:
    """Whether ``operation`` runs its compiled kernel under ``backend``.

    Raises:
        ConfigError: ``backend`` is not one of "auto", "numba", "numpy".
        MissingDependencyError: ``backend="numba"`` without numba installed.
    """
    if backend not in ("auto", "numba", "numpy"):
        raise ConfigError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy":
        return False
    if importlib.util.find_spec("numba") is not None:
        return True
    if backend == "numba":
        raise MissingDependencyError(f"the compiled {operation}", "numba", NUMBA_INSTALL)
    log_numpy_fallback(operation)
    return False


@functools.cache
def log_numpy_fallback(operation: str) -> None:
    """Say once per operation that its NumPy twin runs (same result, slower)."""
    logger.info(
        "%s: numba is not installed, computing in NumPy (same result, several times "
        "slower); for speed: %s",
        operation,
        NUMBA_INSTALL,
    )


def serialised(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` (a parallel one) called under :data:`KERNEL_LOCK`."""

    @functools.wraps(kernel)
    def run(*args: Any) -> Any:
        with KERNEL_LOCK:
            return kernel(*args)

    return run


def _build(builder: Callable[[Any], Callable[..., Any]]) -> Callable[[], Callable[..., Any] | None]:
    """A cached getter of ``builder(numba)``'s kernel, or None without numba (logged once)."""

    @functools.cache
    def get() -> Callable[..., Any] | None:
        if not use_numba("auto", builder.__name__.replace("_", " ")):
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
