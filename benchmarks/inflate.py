"""Speed and memory of the ``inflate`` generator on the test pictures.

Each picture runs in a child process of its own, so the peak resident memory reported is
that picture's alone. Printed per picture: the pixels the pipeline was given, faces and
vertices of the mesh, wall time of the first pipeline call (modules already imported) and
of its stages, peak resident memory of the process and its rise over the size after the
imports (both cover that first call), the peak of Python allocations (tracemalloc, in a
second untimed call since tracing slows allocation) and whether the mesh is watertight.

Usage:
    python benchmarks/inflate.py [--images DIR] [--native] [--splats N] [--resolution N]

Target: under 2 s and 1 GB per 1024-pixel picture on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "testdata" / "images"
TARGET_SIDE = 1024


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_one(path: Path, side: int | None, params: dict) -> dict:
    """Run inflate on one picture in this process and return its figures."""
    import numpy as np

    # Imported before the clock starts: the table measures work, not module loading.
    import scipy.ndimage  # noqa: F401
    from PIL import Image
    from skimage.measure import marching_cubes  # noqa: F401

    from genesis3d.geometry.measure import mesh_health
    from genesis3d.pipelines.inflate import InflatePipeline

    with Image.open(path) as image:
        picture = image.convert("RGBA")
    if side is not None:
        scale = side / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(picture)
    pipeline = InflatePipeline()
    baseline = _peak_rss_mb()
    start = time.perf_counter()
    result = pipeline(pixels, outputs=("mesh", "splats"), **params)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    # tracemalloc slows allocation-heavy code, so it watches a second, untimed call.
    tracemalloc.start()
    pipeline(pixels, outputs=("mesh", "splats"), **params)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mesh = result.mesh
    health = mesh_health(mesh.positions, mesh.faces, mesh.uvs)
    return {
        "image": path.name,
        "pixels": f"{pixels.shape[1]}x{pixels.shape[0]}",
        "faces": mesh.n_faces,
        "vertices": mesh.n_vertices,
        "seconds": seconds,
        "stages": result.timings,
        "traced_mb": traced_peak / 2**20,
        "rss_peak_mb": peak,
        "rss_delta_mb": peak - baseline,
        "watertight": health.watertight and health.vertex_manifold,
    }


def _run_child(path: Path, side: int | None, params: dict) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(path),
        "--side",
        str(side or 0),
        "--params",
        json.dumps(params),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    header = (
        f"{'image':<14} {'pixels':>10} {'faces':>8} {'verts':>8} {'time s':>7} "
        f"{'geom':>5} {'tex':>5} {'splat':>5} {'py MB':>7} {'RSS MB':>7} {'+RSS':>6} {'tight':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        stages = row["stages"]
        print(
            f"{row['image'][:14]:<14} {row['pixels']:>10} {row['faces']:>8} {row['vertices']:>8} "
            f"{row['seconds']:>7.2f} {stages.get('geometry', 0):>5.2f} "
            f"{stages.get('texture', 0):>5.2f} {stages.get('splats', 0):>5.2f} "
            f"{row['traced_mb']:>7.0f} {row['rss_peak_mb']:>7.0f} {row['rss_delta_mb']:>6.0f} "
            f"{'yes' if row['watertight'] else 'NO':>5}"
        )
    seconds = sorted(row["seconds"] for row in rows)
    print(
        f"median {seconds[len(seconds) // 2]:.2f} s, max {seconds[-1]:.2f} s, "
        f"max peak RSS {max(row['rss_peak_mb'] for row in rows):.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--native", action="store_true", help="also run at native size")
    parser.add_argument("--splats", type=int, default=131_072)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child, args.side or None, json.loads(args.params))))
        return

    pictures = sorted(
        p for p in args.images.iterdir() if p.suffix.lower() in (".webp", ".png", ".jpg", ".jpeg")
    )
    if not pictures:
        raise SystemExit(f"no pictures (*.webp, *.png, *.jpg) in {args.images}")
    params: dict = {"splats": args.splats}
    if args.resolution is not None:
        params["resolution"] = args.resolution
    _table(
        [_run_child(path, TARGET_SIDE, params) for path in pictures],
        f"inflate, pictures resized to {TARGET_SIDE} px on the longest side, {params}",
    )
    if args.native:
        _table(
            [_run_child(path, None, params) for path in pictures],
            f"inflate, pictures at native size, {params}",
        )


if __name__ == "__main__":
    main()
