"""Speed and memory of the TripoSplat pipeline at full size, with random weights.

Writes a random-weight checkpoint folder in the official layout (the released sizes:
DiT 370 M, decoders 288 M, DINOv3 ViT-H/16+ 841 M, FLUX.2 VAE encoder 34 M parameters,
stored as float16 like the released files), then, for each configuration (dtype x offload),
runs one picture in a child process of its own with one sampling step and a 32,768-Gaussian
decode, and prints per-stage wall time and peak resident memory, the whole call's peak, and
the memory an explicit-softmax attention of the DiT would need at the same size.

Usage:
    python benchmarks/triposplat.py [--weights DIR] [--dtypes float32,bfloat16]
        [--offload none,model] [--device cpu] [--steps 1] [--gaussians 32768]

Target: peak memory with offload="model" below the largest component's weights plus 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _memory import PeakSampler, rss_mb

REPO = Path(__file__).resolve().parents[1]
PICTURES = REPO.parent / "shared" / "testdata" / "images"
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def write_full_size(folder: Path) -> Path:
    """Random-weight files of the released sizes, in the official layout (float16)."""
    import torch
    from safetensors.torch import save_file

    from genesis3d.models.triposplat.config import (
        FlowModelConfig,
        GaussianDecoderConfig,
        OctreeDecoderConfig,
    )
    from genesis3d.models.triposplat.decoders import OctreeGaussianDecoder
    from genesis3d.models.triposplat.encoders import DINOv3Config, DINOv3ViT, Flux2VAEEncoder
    from genesis3d.models.triposplat.flow_model import LatentSeqMMFlowModel

    builders = {
        "diffusion_models/triposplat_fp16.safetensors": lambda: LatentSeqMMFlowModel(
            FlowModelConfig()
        ),
        "vae/triposplat_vae_decoder_fp16.safetensors": lambda: OctreeGaussianDecoder(
            OctreeDecoderConfig(), GaussianDecoderConfig()
        ),
        "clip_vision/dino_v3_vit_h.safetensors": lambda: DINOv3ViT(DINOv3Config()),
        "vae/flux2-vae.safetensors": lambda: Flux2VAEEncoder(),
    }
    generator = torch.Generator().manual_seed(0)
    for relative, build in builders.items():
        path = folder / relative
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {}
        for key, value in build().state_dict().items():
            if value.is_floating_point() and value.dim() > 1:
                value = torch.randn(value.shape, generator=generator) * (
                    0.5 / value.shape[-1] ** 0.5
                )
            state[key] = (value.half() if value.is_floating_point() else value).contiguous()
        save_file(state, str(path))
        del state
    return folder


def child(args: argparse.Namespace) -> None:
    """Run one configuration in this process and print one JSON line."""
    import torch

    from genesis3d.pipelines.triposplat import TripoSplatPipeline

    torch.set_grad_enabled(False)
    sampler = PeakSampler("load")
    base = rss_mb()
    start = time.perf_counter()
    pipeline = TripoSplatPipeline.from_pretrained(
        args.weights, device=args.device, dtype=args.dtype, offload=args.offload
    )
    load_s = time.perf_counter() - start

    starts: dict[str, float] = {}

    def progress(event) -> None:
        if sampler.stage != event.stage:
            starts[event.stage] = time.perf_counter()
            sampler.mark(event.stage)

    from genesis3d.errors import AssetError

    picture = sorted(PICTURES.glob("*.webp"))[0]
    note, gaussians = "", 0
    try:
        result = pipeline(
            picture, seed=0, gaussians=args.gaussians, steps=args.steps, progress=progress
        )
        timings, gaussians = result.timings, len(result.splats.means)
    except AssetError as error:
        # Random weights can decode to non-finite splats, which the asset refuses after
        # every stage has run: the stage times and memory still stand.
        end = time.perf_counter()
        order = sorted(starts, key=starts.get)
        bounds = [starts[name] for name in order[1:]] + [end]
        timings = {name: stop - starts[name] for name, stop in zip(order, bounds, strict=True)}
        note = f"output refused (random weights): {str(error)[:90]}"
    sampler.stop()
    print(json.dumps({
        "dtype": args.dtype, "offload": args.offload, "load_s": load_s, "timings": timings,
        "peaks_mb": sampler.peaks, "base_mb": base, "gaussians": gaussians, "note": note,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / ".cache" / "bench-triposplat")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--offload", default="none,model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--gaussians", type=int, default=32768)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    print(f"writing random full-size weights to {args.weights} (once) ...", flush=True)
    write_full_size(args.weights)
    from genesis3d.models.triposplat.components import COMPONENTS
    from genesis3d.weights.loading import read_header

    numel = {
        name: sum(info.numel for info in read_header(args.weights / c.file).values())
        for name, c in COMPONENTS.items() if c.required
    }  # fmt: skip
    stages = ["preprocess", "encode", "sample", "decode"]
    header = (
        f"{'dtype':9} {'offload':7} {'load s':>7} "
        + " ".join(f"{s + ' s':>10} {'peak MB':>8}" for s in stages)
        + f" {'call peak MB':>12} {'target MB':>9}"
    )

    def line(row: dict) -> str:
        largest = max(numel.values()) * DTYPE_BYTES[row["dtype"]] / 2**20
        target = largest + 2048
        cells = " ".join(
            f"{row['timings'].get(s, 0):10.2f} {row['peaks_mb'].get(s, 0):8.0f}" for s in stages
        )
        peak = max(row["peaks_mb"].values())
        verdict = ("ok" if peak < target else "OVER") if row["offload"] == "model" else ""
        return (
            f"{row['dtype']:9} {row['offload']:7} {row['load_s']:7.1f} {cells} {peak:12.0f} "
            f"{target:9.0f} {verdict}"
        )

    rows = []
    for dtype in args.dtypes.split(","):
        for offload in args.offload.split(","):
            command = [sys.executable, __file__, "--child", "--weights", str(args.weights), "--dtype", dtype,
                       "--offload", offload, "--device", args.device, "--steps", str(args.steps),
                       "--gaussians", str(args.gaussians)]  # fmt: skip
            print(f"running {dtype} offload={offload} ...", flush=True)
            done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
            if done.returncode != 0:
                print(done.stderr[-2000:])
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(header + "\n" + line(rows[-1]), flush=True)  # each row as soon as it is known
            if rows[-1].get("note"):
                print("  " + rows[-1]["note"], flush=True)

    print("\nall configurations:")
    print(header)
    for row in rows:
        print(line(row))
    tokens, heads = 8192 + 4101 + 1, 16
    for dtype in args.dtypes.split(","):
        size = heads * tokens**2 * DTYPE_BYTES[dtype] / 2**30
        print(
            f"explicit-softmax DiT attention scores, one layer, batch 1, {dtype}: {size:.2f} GiB (never allocated: SDPA)"
        )
    print("parameters per component:", ", ".join(f"{k} {v / 1e6:.0f} M" for k, v in numel.items()))


if __name__ == "__main__":
    main()
