"""Speed and peak memory of the clean, decimate and attribute-sampling stages.

Each case runs in a child process of its own so its peak resident memory is its alone.
Inputs: a bumpy marching-cubes sphere (``--res``, 392 gives about 0.86M faces) and a fine
torus grid of ``--big`` million faces (cheap to build at any size, so 10M and 40M are
possible on a small machine).

Usage:
    python benchmarks/geometry_stages.py [--res 392] [--big 10,40] [--cases ...]

Measured on the 2-core machine while other jobs ran (load average 5-8, so times are upper
bounds; peak MB is the child's whole peak, input generation included):

    case   input       faces in    s      peak MB  out
    clean  bumpy:392      861204    4.66      467  860872 faces, watertight, 0 degenerate
    lods   bumpy:392      861204    3.27      398  499980 / 100000 / 20000
    clean  torus:10      9999392   56.90     4176  9999392
    lods   torus:10      9999392  128.62     2489  500000 / 100000 / 20000 (slab pre-pass)
    lods   torus:40     39997568  290.12     4228  499999 / 100000 / 20000 (slab pre-pass)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _mesh(spec: str):
    import numpy as np

    from genesis3d.testing import shapes

    kind, size = spec.split(":")
    if kind == "bumpy":
        # Marching cubes of the bumpy field takes minutes at 392^3: keep it between runs.
        cache = Path(tempfile.gettempdir()) / "genesis3d_bench" / f"bumpy_{size}.npz"
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            positions, faces = shapes.bumpy_sphere(int(size))
            np.savez(cache, positions=positions, faces=faces)
        data = np.load(cache)
        return data["positions"], data["faces"]
    side = int(np.sqrt(float(size) * 1e6 / 2))
    return shapes.torus(side, side)


def run_case(case: str, spec: str) -> dict:
    """One stage on one input, in this process."""
    import numpy as np

    positions, faces = _mesh(spec)
    base = _peak_mb()
    start = time.perf_counter()
    extra: dict = {}
    if case == "clean":
        from genesis3d.geometry.clean import clean_mesh

        result = clean_mesh(positions, faces)
        extra = {"faces_out": len(result.faces)}
    elif case == "clean_soup":
        from genesis3d.geometry.clean import clean_mesh

        soup = positions[faces].reshape(-1, 3)
        start = time.perf_counter()
        result = clean_mesh(soup, np.arange(len(soup)).reshape(-1, 3))
        extra = {"faces_out": len(result.faces)}
    elif case.startswith("lods"):
        from genesis3d.geometry.decimate import decimate_lods

        lods = decimate_lods(positions, faces, (500_000, 100_000, 20_000))
        extra = {"faces_out": [len(level[1]) for level in lods]}
    elif case == "voxels":
        from genesis3d.geometry.attributes import SparseVoxelAttributes

        resolution = 512
        cells = np.unique(
            np.floor((positions / 2.0 + 0.5) * resolution).astype(np.int64).clip(0, 511), axis=0
        )
        grown = np.unique(
            np.concatenate([cells + offset for offset in np.argwhere(np.ones((3, 3, 3))) - 1]),
            axis=0,
        ).clip(0, 511)
        grown = np.unique(grown, axis=0)
        values = np.random.default_rng(0).random((len(grown), 6)).astype(np.float32)
        source = SparseVoxelAttributes(grown, values, resolution, [[-1.0] * 3, [1.0] * 3])
        query = positions[faces[:, 0]]
        start = time.perf_counter()
        source.sample_positions(query)
        extra = {"voxels": len(grown), "queries": len(query)}
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "input": spec,
        "faces_in": len(faces),
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb(), 0),
        "input_mb": round(base, 0),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--res", type=int, default=392)
    parser.add_argument("--big", default="10")
    parser.add_argument("--cases", default="clean,clean_soup,lods,voxels")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(*args.child)))
        return
    inputs = [f"bumpy:{args.res}"] + [f"torus:{size}" for size in args.big.split(",") if size]
    print(
        f"{'case':12s} {'input':12s} {'faces in':>10s} {'s':>7s} {'peak MB':>8s} {'input MB':>8s}  out"
    )
    for spec in inputs:
        for case in args.cases.split(","):
            if case == "voxels" and not spec.startswith("bumpy"):
                continue
            done = subprocess.run(
                [sys.executable, __file__, "--child", case, spec], capture_output=True, text=True
            )
            if done.returncode != 0:
                print(f"{case:12s} {spec:12s} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rest = {
                k: v
                for k, v in row.items()
                if k not in {"case", "input", "faces_in", "seconds", "peak_mb", "input_mb"}
            }
            print(
                f"{case:12s} {spec:12s} {row['faces_in']:>10d} {row['seconds']:>7.2f} "
                f"{row['peak_mb']:>8.0f} {row['input_mb']:>8.0f}  {rest}",
                flush=True,
            )


if __name__ == "__main__":
    main()
