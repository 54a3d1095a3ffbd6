"""Speed of the submanifold 3x3x3 sparse convolution on a voxelised sphere surface.

Builds the voxels of a sphere shell in a 256^3 grid (about 200k active voxels at the
default radius), then times Genesis' gather-matmul-scatter convolution (64 -> 64 channels,
float32, neighbour map built once and cached as in the decoders) at one and two threads,
and the ``spconv`` CPU package's ``SubMConv3d`` at one thread when it is installed (spconv's
CPU path gives wrong results with more than one thread). Also checks that both agree.

spconv's time includes its own neighbour search (its ``SubMConv3d`` rebuilds the index
pairs on every call without an ``indice_key``), so the comparison is made both ways: our
convolution alone (map cached, as in the decoders) and our map plus convolution.

spconv is not a project dependency. To run the comparison, put it in a separate venv with
the CPU torch build (spconv 2.3.8 with cumm 0.7.11 install from PyPI as wheels, nothing to
compile) and run the script there against the source tree:

    python3 -m venv /tmp/venv-spconv
    /tmp/venv-spconv/bin/pip install torch==2.13.0 spconv==2.3.8 numpy
    OMP_NUM_THREADS=1 PYTHONPATH=src /tmp/venv-spconv/bin/python benchmarks/sparse_conv.py

Usage:
    python benchmarks/sparse_conv.py [--grid 256] [--radius 0.49] [--channels 64] [--repeats 3]

Target: within 2x of spconv at one thread.

Measured (199,184 voxels, 64 -> 64 channels, float32, best CPU seconds of 3, on a 2-core
machine at load average 5 to 8, spconv 2.3.8): neighbour pairs 0.73 s; convolution with
cached pairs 1.24 s at 1 thread (3.76 CPU s, 7.1 s wall at 2 threads under that load);
pairs + convolution 1.97 s; spconv SubMConv3d 1.78 s at 1 thread; outputs identical (max
difference 0). Ratios: 0.70x (convolution) and 1.10x (pairs + convolution): target met.
"""

from __future__ import annotations

import argparse
import time

import torch


def sphere_shell(grid: int, radius: float) -> torch.Tensor:
    """(N, 4) int32 (batch 0, x, y, z) voxels whose centre lies within half a voxel of the sphere."""
    axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid - 0.5
    rows = []
    for x in range(grid):  # one slab at a time: a dense 256^3 float grid is not needed
        xx = axis[x]
        yy, zz = torch.meshgrid(axis, axis, indexing="ij")
        distance = (xx**2 + yy**2 + zz**2).sqrt()
        hit = torch.nonzero((distance - radius).abs() * grid <= 0.5)
        if len(hit):
            rows.append(torch.cat([torch.full((len(hit), 1), x), hit], dim=1))
    xyz = torch.cat(rows)
    return torch.cat([torch.zeros(len(xyz), 1, dtype=torch.long), xyz], dim=1).to(torch.int32)


def time_call(fn, repeats: int) -> float:
    """Best of ``repeats`` calls after a warm-up, in process CPU seconds.

    CPU time rather than wall time: on a shared machine the wall time measures the load as
    much as the code. With several threads it is the sum over threads (the work, not the
    latency); the wall time of the best call is printed beside it.
    """
    fn()
    best, best_wall = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_wall = time.process_time(), time.perf_counter()
        fn()
        best = min(best, time.process_time() - start)
        best_wall = min(best_wall, time.perf_counter() - start_wall)
    time_call.last_wall = best_wall
    return best


def _wall() -> str:
    return f"wall {time_call.last_wall:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--radius", type=float, default=0.49)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from genesis3d.nn.sparse import SparseConv3d, SparseTensor
    from genesis3d.nn.sparse.conv import submanifold_pairs

    coords = sphere_shell(args.grid, args.radius)
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(len(coords), args.channels, generator=generator)
    conv = SparseConv3d(args.channels, args.channels).eval()
    rows = [("voxels", f"{len(coords)}", "")]

    torch.set_num_threads(1)
    map_seconds = time_call(lambda: submanifold_pairs(SparseTensor(coords, feats)), args.repeats)
    rows.append(("genesis neighbour pairs (1 thread)", f"{map_seconds:.3f} s", _wall()))
    x = SparseTensor(coords, feats)
    conv_seconds = {}
    with torch.inference_mode():
        ours = conv(x).feats
        for threads in (1, 2):
            torch.set_num_threads(threads)
            conv_seconds[threads] = time_call(lambda: conv(x), args.repeats)
            name = f"genesis conv, pairs cached ({threads} thread{'s' * (threads > 1)})"
            rows.append((name, f"{conv_seconds[threads]:.3f} s", _wall()))
    rows.append(("genesis pairs + conv (1 thread)", f"{map_seconds + conv_seconds[1]:.3f} s", ""))

    try:
        import spconv.pytorch as spconv
    except ImportError:
        rows.append(("spconv", "not installed", "see the docstring: a separate venv"))
    else:
        torch.set_num_threads(1)
        reference = spconv.SubMConv3d(args.channels, args.channels, 3, bias=True)
        with torch.no_grad():
            # Same (Co, 3, 3, 3, Ci) layout and semantics: no permutation.
            reference.weight.copy_(conv.weight)
            reference.bias.copy_(conv.bias)
        reference.train()  # spconv's CPU eval path refuses a bias
        tensor = spconv.SparseConvTensor(feats, coords, [args.grid] * 3, 1)
        with torch.no_grad():
            theirs = reference(tensor).features
            seconds = time_call(lambda: reference(tensor), args.repeats)
        error = float((theirs - ours).abs().max())
        if error > 1e-4 * float(ours.abs().max()):
            raise SystemExit(f"spconv and genesis disagree: max difference {error:.3g}")
        note = f"{_wall()}, max diff {error:.2e}"
        rows.append(("spconv SubMConv3d (1 thread)", f"{seconds:.3f} s", note))
        for label, mine in (
            ("conv", conv_seconds[1]),
            ("pairs + conv", map_seconds + conv_seconds[1]),
        ):
            ratio = mine / seconds
            verdict = "ok" if ratio <= 2.0 else "OVER"
            rows.append(
                (f"genesis {label} / spconv (1 thread)", f"{ratio:.2f}x", f"target 2x: {verdict}")
            )

    rows.insert(1, ("(times: best CPU seconds)", "", ""))
    width = max(len(name) for name, _, _ in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")  # noqa: T201


if __name__ == "__main__":
    main()
