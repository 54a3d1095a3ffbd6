"""Decimate a triangle mesh to face budgets (one or several levels of detail).

The default backend is ``fast-simplification`` (quadric error edge collapse; MIT, wheels
for CPython 3.11-3.13 on Linux x86_64, macOS and Windows), picked by measurement on an
861k-face bumpy sphere, same process, busy 2-core machine: to 500k / 100k / 20k faces it
took 4.2 / 5.9 / 5.5 s from the full mesh and 4.2 / 2.5 / 0.45 s progressively (each level
from the previous one); meshoptimizer 0.2.30a0 took 5.6 / 3.2 / 3.2 s and 10.0 / 1.5 /
0.36 s. Surface error was the same at the resolution measured (Chamfer 1.04-1.09e-3 of
the diagonal by sample-to-sample distance for both), normal consistency 0.9999 / 0.9995 at
100k / 20k for fast-simplification against 0.9996 / 0.9995. meshoptimizer is an explicit
alternative backend: on PyPI it is an alpha with no wheels, so installing it needs a C++
compiler. Peak memory of the three levels: 0.53 GB (fast-simplification), 0.31 GB
(meshoptimizer). See ``benchmarks/geometry_stages.py``.

Inputs above ``prepass_above`` faces (four million by default) are first decimated in
slabs along their longest axis, each slab with its border vertices locked so the slabs
weld back exactly, down to about ``max(3 * budget, faces / 8)`` faces; the whole-mesh
pass starts from that. The slabs (at most ``slab_faces`` each, four million by default)
run in worker processes, as many at a time as there are cores (the library keeps its
mesh in global state, so threads cannot share it), and memory holds at most that many
slabs: a 40-million-face input stays within 16 GB. The slab boundaries do not depend on
the worker count, so neither does the result. This pre-pass changes the result (it is why
it is an argument, and it is logged). Measured on the 2-core development machine (whose
two cores give about 1.2x one core's throughput together), idle: a 10M-face torus to 100k
faces took 26.7 s with two workers and 27.5 s with one; a 1.2M-face blob to 100k took
1.95 s in one pass and 2.9 s through the pre-pass (hence the threshold), same Chamfer
distance and normal consistency. :func:`cluster_vertices`
(uniform-grid vertex clustering) is kept as a cruder, faster reduction: measured, it
leaves non-manifold edges that stop the edge collapses short of small budgets, so the
decimator does not use it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from genesis3d.errors import ConfigError, GenesisError, require
from genesis3d.geometry.clean import degenerate_faces, duplicate_faces, remove_unreferenced
from genesis3d.geometry.mesh_ops import check_mesh
from genesis3d.geometry.slab_worker import simplify_slab
from genesis3d.geometry.weld import weld_exact_with_source

logger = logging.getLogger(__name__)

DecimateBackend = Literal["fast-simplification", "meshoptimizer"]

_INSTALL = {
    "fast-simplification": 'pip install "genesis3d[export]"  (or: pip install fast-simplification)',
    "meshoptimizer": "pip install meshoptimizer  (builds from source: needs a C++ compiler)",
}


def cluster_vertices(
    positions: np.ndarray, faces: np.ndarray, cell_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge all vertices in each cell of a uniform grid into their mean.

    Faces that collapse (repeat a vertex) or become copies of another face are dropped,
    and so are vertices no face uses.

    Args:
        positions: (n, 3) float.
        faces: (m, 3) int.
        cell_size: grid cell side, in the mesh's units.

    Returns:
        (positions (k, 3) float32, faces (m', 3) int64).
    """
    positions, faces = check_mesh(positions, faces)
    if cell_size <= 0.0:
        raise ConfigError(f"cell_size must be positive, got {cell_size}")
    low = positions.min(axis=0)
    cells = np.floor((positions - low) / cell_size).astype(np.int64)
    span = cells.max(axis=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    del cells
    _, cluster = np.unique(keys, return_inverse=True)
    del keys
    count = int(cluster.max()) + 1
    weights = np.bincount(cluster, minlength=count).astype(np.float64)
    merged = np.stack(
        [np.bincount(cluster, weights=positions[:, k], minlength=count) for k in range(3)], axis=1
    )
    merged = (merged / weights[:, None]).astype(np.float32)
    faces = cluster[faces]
    keep = (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )
    faces = faces[keep]
    faces = faces[~duplicate_faces(faces, count)]
    merged, faces, _ = remove_unreferenced(merged, faces)
    return merged, faces


def _slabs_in_processes(
    inputs: Iterator[tuple[np.ndarray, np.ndarray, int, float]], workers: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decimate slabs in ``workers`` processes of :mod:`~genesis3d.geometry.slab_worker`.

    At most ``workers`` slabs are out at a time (memory holds that many copies); results
    come back in input order.
    """
    import subprocess
    import sys
    import tempfile

    results: list[tuple[np.ndarray, np.ndarray]] = []
    running: list[tuple[subprocess.Popen, Path]] = []

    def collect() -> None:
        process, out_path = running.pop(0)
        _, error = process.communicate()
        if process.returncode != 0:
            raise GenesisError(
                f"decimating a slab failed in its worker process (exit {process.returncode}): "
                f"{error.decode(errors='replace').strip()[-2000:]}; "
                "pass workers=1 to decimate in this process"
            )
        with np.load(out_path) as data:
            results.append((data["points"], data["triangles"]))

    with tempfile.TemporaryDirectory(prefix="genesis3d-slabs-") as folder:
        try:
            for index, (points, triangles, target, aggressiveness) in enumerate(inputs):
                if len(running) == workers:
                    collect()
                in_path, out_path = Path(folder, f"in{index}.npz"), Path(folder, f"out{index}.npz")
                np.savez(
                    in_path,
                    points=points,
                    triangles=triangles,
                    target=target,
                    aggressiveness=aggressiveness,
                )
                command = [sys.executable, "-m", "genesis3d.geometry.slab_worker"]
                process = subprocess.Popen(
                    [*command, str(in_path), str(out_path)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                running.append((process, out_path))
            while running:
                collect()
        finally:
            for process, _ in running:
                process.kill()
                process.wait()
    return results


def _decimate_in_slabs(
    positions: np.ndarray,
    faces: np.ndarray,
    goal: int,
    slab_faces: int,
    aggressiveness: float,
    workers: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Decimate a large mesh slab by slab (along its longest axis) to about ``goal`` faces.

    Each slab keeps its border vertices (``preserve_border``), so the slabs weld back
    exactly and the result is as manifold as the input. With ``workers`` > 1 that many
    slabs are decimated at a time, each in a process of its own
    (:mod:`~genesis3d.geometry.slab_worker`: the library keeps its mesh in global state,
    so threads cannot share it); the slabs, and so the result, do not depend on
    ``workers``.
    """
    require("fast_simplification", feature="decimation", install=_INSTALL["fast-simplification"])
    axis = int(np.argmax(positions.max(axis=0) - positions.min(axis=0)))
    order = np.argsort(positions[faces[:, 0], axis], kind="stable")
    slabs = max(2, -(-len(faces) // slab_faces))
    in_slab = np.zeros(len(positions), bool)

    def slab_input(members: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, float]:
        # The slab's vertices in index order and its faces renumbered onto them (what
        # ``np.unique(..., return_inverse=True)`` gives, without sorting millions of ids).
        slab = faces[members]
        in_slab[:] = False
        in_slab[slab.reshape(-1)] = True
        used = np.flatnonzero(in_slab)
        local = (np.cumsum(in_slab) - 1)[slab]
        target = max(4, int(len(members) * goal / len(faces)))
        return positions[used].astype(np.float64), local.astype(np.int32), target, aggressiveness

    groups = np.array_split(order, slabs)
    workers = max(1, min(workers, slabs))
    inputs = (slab_input(members) for members in groups)
    if workers == 1:
        parts = [simplify_slab(*arguments) for arguments in inputs]
    else:
        parts = _slabs_in_processes(inputs, workers)
    offsets = np.cumsum([0] + [len(points) for points, _ in parts[:-1]])
    joined = np.concatenate([points for points, _ in parts]).astype(positions.dtype)
    merged, source = weld_exact_with_source(
        joined,
        np.concatenate(
            [
                triangles.astype(np.int64) + offset
                for (_, triangles), offset in zip(parts, offsets, strict=True)
            ]
        ),
    )
    del parts
    joined = joined[source]
    merged = merged[~degenerate_faces(joined, merged)]
    merged = merged[~duplicate_faces(merged, len(joined))]
    joined, merged, _ = remove_unreferenced(joined, merged)
    return joined, merged


def _fast_simplification(
    positions: np.ndarray, faces: np.ndarray, target: int, aggressiveness: float
):
    library = require(
        "fast_simplification", feature="decimation", install=_INSTALL["fast-simplification"]
    )
    points, triangles = library.simplify(
        np.ascontiguousarray(positions, np.float64),
        np.ascontiguousarray(faces, np.int32),
        target_count=int(target),
        agg=float(aggressiveness),
    )
    return points.astype(np.float32), triangles.astype(np.int64)


def _meshoptimizer(positions: np.ndarray, faces: np.ndarray, target: int, aggressiveness: float):
    library = require("meshoptimizer", feature="decimation", install=_INSTALL["meshoptimizer"])
    indices = np.ascontiguousarray(faces, np.uint32).reshape(-1)
    destination = np.zeros_like(indices)
    # target_error is relative to the mesh extent; 1.0 lets it reach the face budget.
    count = library.simplify(
        destination,
        indices,
        np.ascontiguousarray(positions, np.float32),
        target_index_count=3 * int(target),
        target_error=1.0,
    )
    return np.asarray(positions, np.float32), destination[:count].reshape(-1, 3).astype(np.int64)


_BACKENDS = {"fast-simplification": _fast_simplification, "meshoptimizer": _meshoptimizer}


def decimate(
    positions: np.ndarray,
    faces: np.ndarray,
    target_faces: int,
    *,
    backend: DecimateBackend = "fast-simplification",
    aggressiveness: float = 7.0,
    prepass_above: int | None = 4_000_000,
    slab_faces: int = 4_000_000,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a mesh to at most ``target_faces`` faces by quadric edge collapse.

    Degenerate and duplicate faces the collapses leave are dropped, so the result may hold
    slightly fewer faces than the budget. A mesh already within budget comes back as is.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices.
        target_faces: face budget, at least 4.
        backend: "fast-simplification" (default) or "meshoptimizer".
        aggressiveness: fast-simplification's ``agg`` (higher is faster and coarser).
        prepass_above: inputs with more faces are first decimated slab by slab (borders
            locked, slabs in parallel) down to about ``max(3 * target_faces, faces / 8)``,
            then as a whole; None never does.
        slab_faces: most faces in one slab of the pre-pass (bounds memory per slab).
        workers: slabs decimated at a time; default the number of cores.

    Returns:
        (positions (k, 3) float32, faces (t, 3) int64) with t <= target_faces.

    Raises:
        ConfigError: bad budget or backend.
        MissingDependencyError: the backend's library is not installed.
    """
    positions, faces = check_mesh(positions, faces)
    if not isinstance(target_faces, int | np.integer) or target_faces < 4:
        raise ConfigError(
            f"target_faces must be an integer of at least 4, got {target_faces!r}; e.g. 100_000"
        )
    if backend not in _BACKENDS:
        raise ConfigError(
            f"backend must be one of {sorted(_BACKENDS)}, got {backend!r}; "
            'use "fast-simplification" unless meshoptimizer is installed'
        )
    if len(faces) <= target_faces:
        return np.asarray(positions, np.float32), faces.astype(np.int64)
    if not isinstance(slab_faces, int | np.integer) or slab_faces < 4:
        raise ConfigError(f"slab_faces must be an integer of at least 4, got {slab_faces!r}")
    if prepass_above is not None and len(faces) > prepass_above:
        goal = max(3 * int(target_faces), len(faces) // 8)
        if goal < len(faces):
            before = len(faces)
            threads = workers if workers is not None else (os.cpu_count() or 1)
            positions, faces = _decimate_in_slabs(
                positions, faces, goal, int(slab_faces), aggressiveness, int(threads)
            )
            logger.info(
                "decimate: %d faces is above prepass_above=%d; decimating in slabs with their "
                "borders locked gave %d faces before the whole-mesh pass",
                before,
                prepass_above,
                len(faces),
            )
    points, triangles = _BACKENDS[backend](positions, faces, target_faces, aggressiveness)
    bad = degenerate_faces(points, triangles)
    triangles = triangles[~bad]
    triangles = triangles[~duplicate_faces(triangles, len(points))]
    if len(triangles) > target_faces:
        logger.warning(
            "decimate: %s stopped at %d faces, above the budget of %d",
            backend,
            len(triangles),
            target_faces,
        )
    points, triangles, _ = remove_unreferenced(points, triangles)
    return points, triangles


def decimate_lods(
    positions: np.ndarray,
    faces: np.ndarray,
    budgets: Sequence[int],
    **options,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decimate to several budgets, each level starting from the next larger one.

    Args:
        positions: (n, 3) float vertex positions.
        faces: (m, 3) int vertex indices.
        budgets: face budgets in any order, e.g. (500_000, 100_000, 20_000).
        **options: passed to :func:`decimate`.

    Returns:
        One (positions (k, 3) float32, faces (t, 3) int64) per budget, in the order given.
    """
    if len(budgets) == 0:
        raise ConfigError("budgets must name at least one face count, got none; e.g. (100_000,)")
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    current = (positions, faces)
    for budget in sorted(set(budgets), reverse=True):
        current = decimate(current[0], current[1], budget, **options)
        results[budget] = current
    return [results[budget] for budget in budgets]
