"""Speed and memory of TripoSG's mesh extraction and of one full-size DiT step.

Extraction: a synthetic SDF of known shape (a torus around a sphere, positive inside,
scaled so |f| < 0.95 only within about a cell of the surface like the released decoder's
field) is extracted at the official final resolution, once with the flash coarse-to-fine
route (63 -> 126 -> 252 -> 504 cells) and once by evaluating every point of the official
dense grid (512^3, the route upstream takes without the flash decoder), each in a child
process of its own. Each child first extracts once at a small depth (8, or the timed depth
if smaller), the same for both routes, so the timed run pays no imports and no loading of
compiled kernels (numba's cache; compiling them when the cache is cold): that one-time cost
is printed apart as "warm-up s". Then it extracts ``--repeat`` times (3 by default: this
machine is noisy) and reports the median wall and CPU time and the range of wall times; the
verdict compares medians. Printed: evaluated points, wall and CPU time, peak
resident memory (or CUDA peak), and the symmetric Chamfer distance of the mesh to the true
surface.

An analytic field costs next to nothing per point; the released decoder costs about
29 MFLOP per point (0.75 ms on two CPU cores), so the evaluated-point column is what
dominates with real weights. ``--point-cost`` adds that many random 256-wide MLP layers
per point to the synthetic field to move it toward the real cost.

DiT: one Euler step with CFG (two forwards of the 1.44 B-parameter transformer, 2048
tokens, 257 condition tokens) with random weights, in bfloat16 on the CPU by default.

Usage:
    python benchmarks/triposg.py [--device cpu] [--depth 9] [--point-cost 0] [--repeat 3]
        [--skip-dense] [--skip-extraction] [--skip-dit] [--dit-dtype bfloat16]

Target: flash extraction at least 5x faster than the dense route, Chamfer no worse.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

RADIUS, TORUS_MAJOR, TORUS_MINOR = 0.45, 0.7, 0.12
STEEPNESS = 240.0  # |f| < 0.95 within 0.004 of the surface: about one 504-grid cell
#: depth of the untimed first extraction (the flash ladder's every stage runs from depth 8)
WARM_UP_DEPTH = 8


def true_distance(points):
    """Signed distance to the union of the sphere and the torus, positive inside."""
    import torch

    sphere = RADIUS - points.norm(dim=-1)
    ring = torch.sqrt(points[:, 0] ** 2 + points[:, 2] ** 2) - TORUS_MAJOR
    torus = TORUS_MINOR - torch.sqrt(ring**2 + points[:, 1] ** 2)
    return torch.maximum(sphere, torus)


def surface_samples(count: int, seed: int = 0):
    """Points on the true surface (sphere and torus parts outside each other), (n, 3) float64."""
    import numpy as np

    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(count, 3))
    sphere = RADIUS * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    u, v = rng.uniform(0, 2 * np.pi, (2, count))
    torus = np.stack(
        [
            (TORUS_MAJOR + TORUS_MINOR * np.cos(v)) * np.cos(u),
            TORUS_MINOR * np.sin(v),
            (TORUS_MAJOR + TORUS_MINOR * np.cos(v)) * np.sin(u),
        ],
        axis=1,
    )
    both = np.concatenate([sphere, torus])
    import torch

    keep = np.abs(true_distance(torch.from_numpy(both)).numpy()) < 1e-9
    return both[keep]


def chamfer(vertices) -> float:
    """Mean distance mesh -> surface plus mean distance surface -> mesh vertices."""
    import numpy as np
    import torch
    from scipy.spatial import cKDTree

    to_surface = np.abs(true_distance(torch.from_numpy(vertices.astype(np.float64))).numpy())
    samples = surface_samples(200_000)
    to_mesh, _ = cKDTree(vertices).query(samples)
    return float(to_surface.mean() + to_mesh.mean())


def run_extraction(method: str, depth: int, device: str, point_cost: int, repeat: int) -> dict:
    import torch

    from genesis3d.models.triposg.extraction import ExtractionOptions, extract_mesh

    generator = torch.Generator().manual_seed(0)
    layers = [
        (torch.randn(256, 256, generator=generator) / 16).to(device) for _ in range(point_cost)
    ]
    lift = (torch.randn(3, 256, generator=generator)).to(device)
    evaluated = 0

    def field(points):
        nonlocal evaluated
        evaluated += points.shape[0]
        value = true_distance(points.double()).float() * STEEPNESS
        if layers:
            hidden = points @ lift
            for weight in layers:
                hidden = torch.tanh(hidden @ weight)
            value = value + 0.0 * hidden[:, 0]  # the cost of a network, not its answer
        return value

    warm_start = time.perf_counter()
    extract_mesh(
        field,
        ExtractionOptions(method=method, octree_depth=min(WARM_UP_DEPTH, depth)),
        batch_points=262_144,
        device=device,
    )
    warm_up = time.perf_counter() - warm_start
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(repeat):
        evaluated = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        vertices, faces = extract_mesh(
            field,
            ExtractionOptions(method=method, octree_depth=depth),
            batch_points=262_144,
            device=device,
        )
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "method": method,
        "warm_up": warm_up,
        "evaluated": evaluated,
        "seconds": statistics.median(times),
        "cpu_seconds": statistics.median(cpu_times),
        "range": (min(times), max(times)),
        "peak_mb": peak,
        "faces": int(len(faces)),
        "chamfer": chamfer(vertices),
    }


def run_dit(dtype_name: str, device: str) -> dict:
    import torch

    from genesis3d.models.triposg.config import TripoSGDiTConfig
    from genesis3d.models.triposg.transformer import TripoSGDiTModel

    dtype = getattr(torch, dtype_name)
    config = TripoSGDiTConfig()
    with torch.device("meta"):
        model = TripoSGDiTModel(config)
    model = model.to_empty(device=device).to(dtype)
    generator = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter.shape[-1] if parameter.dim() > 1 else 1
            parameter.copy_(
                torch.randn(parameter.shape, generator=generator, device=device) / math.sqrt(fan_in)
            )
    latents = torch.randn(1, 2048, 64, device=device, dtype=dtype)
    condition = torch.randn(1, 257, 1024, device=device, dtype=dtype)
    timestep = torch.full((1,), 1000.0, device=device)
    with torch.inference_mode():
        start = time.perf_counter()
        model(latents, timestep, condition)
        model(latents, timestep, torch.zeros_like(condition))
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"dtype": dtype_name, "seconds": seconds, "peak_mb": peak}


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--depth", type=int, default=9)
    parser.add_argument("--point-cost", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed extractions per route")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--skip-dit", action="store_true")
    parser.add_argument("--dit-dtype", default="bfloat16")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.child is not None:
        kind, *rest = args.child
        if kind == "extract":
            result = run_extraction(rest[0], int(rest[1]), rest[2], int(rest[3]), int(rest[4]))
        else:
            result = run_dit(rest[0], rest[1])
        print(json.dumps(result))
        return

    methods = [] if args.skip_extraction else ["flash"] + ([] if args.skip_dense else ["dense"])
    rows = [
        _child(
            [
                "extract",
                method,
                str(args.depth),
                args.device,
                str(args.point_cost),
                str(args.repeat),
            ]
        )
        for method in methods
    ]
    if rows:
        print(
            f"extraction at depth {args.depth} on {args.device} (point cost {args.point_cost} layers)"
        )
        print(
            f"{'route':<8} {'warm-up s':>9} {'evaluated':>12} {'seconds':>9} {'range':>13} "
            f"{'CPU s':>9} {'peak MB':>9} {'faces':>9} {'chamfer':>10}"
        )
    for row in rows:
        print(
            f"{row['method']:<8} {row['warm_up']:>9.2f} {row['evaluated']:>12,} {row['seconds']:>9.2f} "
            f"{row['range'][0]:>6.2f}-{row['range'][1]:<6.2f} {row['cpu_seconds']:>9.2f} {row['peak_mb']:>9.0f} {row['faces']:>9,} {row['chamfer']:>10.2e}"
        )
    if len(rows) == 2:
        flash, dense = rows
        wall = dense["seconds"] / flash["seconds"]
        cpu = dense["cpu_seconds"] / flash["cpu_seconds"]
        quality = "no worse" if flash["chamfer"] <= dense["chamfer"] else "WORSE"
        verdict = "ok" if min(wall, cpu) >= 5 and quality == "no worse" else "MISSED"
        print(
            f"flash is {wall:.1f}x faster than dense in wall time, {cpu:.1f}x in CPU time; "
            f"Chamfer {quality} (target: 5x, no worse): {verdict}"
        )
    if not args.skip_dit:
        dit = _child(["dit", args.dit_dtype, args.device])
        print(
            f"DiT step (CFG, 2 forwards, 2048 tokens) {dit['dtype']} on {args.device}: "
            f"{dit['seconds']:.1f} s, peak {dit['peak_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
