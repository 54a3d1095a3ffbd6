"""Speed of the submanifold 3x3x3 sparse convolution on a voxelised sphere surface.

Builds the voxels of a sphere shell in a 256^3 grid (about 200k active voxels at the
default radius), then times Genesis' gather-matmul-scatter convolution (64 -> 64 channels,
float32, neighbour map built once and cached as in the decoders) at one and two threads,
and the ``spconv`` CPU package's ``SubMConv3d`` at one thread when it is installed (spconv's
CPU path gives wrong results with more than one thread). Also checks that both agree.

Usage:
    python benchmarks/sparse_conv.py [--grid 256] [--radius 0.49] [--channels 64] [--repeats 3]

Target: within 2x of spconv at one thread.
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
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--radius", type=float, default=0.49)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from genesis3d.nn.sparse import SparseConv3d, SparseTensor, neighbor_map

    coords = sphere_shell(args.grid, args.radius)
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(len(coords), args.channels, generator=generator)
    conv = SparseConv3d(args.channels, args.channels).eval()
    rows = [("voxels", f"{len(coords)}", "")]

    torch.set_num_threads(1)
    start = time.perf_counter()
    neighbor_map(coords)
    rows.append(("genesis neighbour map (1 thread)", f"{time.perf_counter() - start:.3f} s", ""))
    x = SparseTensor(coords, feats)
    with torch.inference_mode():
        ours = conv(x).feats
        for threads in (1, 2):
            torch.set_num_threads(threads)
            seconds = time_call(lambda: conv(x), args.repeats)
            rows.append(
                (f"genesis conv ({threads} thread{'s' * (threads > 1)})", f"{seconds:.3f} s", "")
            )

    try:
        import spconv.pytorch as spconv
    except ImportError:
        rows.append(("spconv", "not installed", "pip install spconv==2.3.8"))
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
        rows.append(("spconv SubMConv3d (1 thread)", f"{seconds:.3f} s", f"max diff {error:.2e}"))

    width = max(len(name) for name, _, _ in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")  # noqa: T201


if __name__ == "__main__":
    main()
