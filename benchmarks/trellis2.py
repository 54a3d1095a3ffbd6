"""Speed and memory of the full-size TRELLIS.2 models per stage, with random weights.

Builds each component at its released size (configs of the spec's section 1.1: DINOv3
ViT-L/16 303 M, structure flow 1.3 B, structure decoder 74 M, shape and texture flows
1.3 B each, shape and texture decoders 474 M each), directly in memory with seeded random
weights in bfloat16, and runs the '1024_cascade' stages once each in a child process per
offload policy, printing each stage's wall time, CPU time and peak resident memory as it
completes:

- ``dinov3``: conditioning at 512 and 1024 px (1029 and 4101 tokens).
- ``ss_flow``: one sampling step with CFG (two calls) of the dense structure flow, 16^3 =
  4096 tokens against the 512 px tokens.
- ``ss_decoder``: structure latent to 64^3 occupancy logits.
- ``shape_upsample``: the cascade's ``decoder.upsample(x, 4)`` of the low-resolution shape
  latent (32^3 grid) to the 512 grid.
- ``shape_flow``: one step with CFG of the 1024 shape flow on the high-resolution tokens.
- ``texture_flow``: one step with CFG of the 1024 texture flow (64 input channels). The
  released texture sampler uses guidance 1 (one call per step), so this row is twice the
  released per-step cost.
- ``shape_decoder``: the shape latent to the 1024-grid voxels, with subdivision logits.
- ``mesh``: flexible dual grid to mesh on those voxels.
- ``texture_decoder``: the texture latent along the shape decoder's subdivisions.

The object is a spherical shell of voxels: ``--radius`` (fraction of the grid) sets the
token counts, printed with the results. The default, 0.25, gives 1,232 tokens on the 32^3
grid (the cascade's low-resolution latent, "a few thousand" in the spec's trace) and 4,808
on the 64^3 grid; random subdivision logits keep about half of the 8 children, so the shape
decoder grows 4,808 -> 19,822 -> 75,704 -> 321,751 -> 1,394,640 voxels, above the ~0.8 M the
spec reports for a real 1024 decode (the decoder rows are an upper estimate).

Offload "model": only the running stage's component is resident; it is built before the
stage and freed after it through ``genesis3d.devices.release_memory``. Offload "none": all
eight components of the '1024_cascade' pipeline (both shape flows included) are built first.

Usage:
    python benchmarks/trellis2.py [--offload model,none] [--threads 2] [--radius 0.25]
        [--stages dinov3,ss_flow,...]

Target: peak memory with offload="model" below the largest component's weights plus 2 GB.

Measured (offload "model", bfloat16 weights computed in float32, 2 threads on a 2-core
machine shared with other work, load average 6 to 8: wall times are about twice the CPU
times; CPU seconds are summed over both threads; two runs side by side, the first covering
dinov3 to shape_flow, the second the decoders and mesh):

    stage            cpu s   wall s   peak MB
    dinov3           145.6    367.6     1162   1029 + 4101 tokens
    ss_flow          700.3   1300.0     3314   4096 tokens, CFG (2 calls)
    ss_decoder        14.6     18.4      709
    shape_upsample   122.0    285.2     1861   1,232 tokens -> 293,557 voxels
    shape_flow       972.2   1710.2     3398   4,808 tokens, CFG (2 calls)
    shape_decoder    399.6    823.5     3691   -> 1,394,640 voxels
    mesh               3.2      4.1     1525   205,734 faces
    texture_decoder  416.1    680.2     3878

Later, on the idle machine (2 threads):

    model   texture_flow     921.4    771.8     3408   4,808 tokens, 64 channels in, CFG
    none    (build all)                         12624   eight networks built in 136 s
    none    ss_decoder        14.5      7.8    12834
    none    dinov3            99.9     52.1    12960

Every offload "model" peak is below the target of 4,513 MB (1,292 M parameters = 2,465 MB
+ 2,048 MB). The other offload "none" stages were not run (their compute is the stages'
above; their memory adds each stage's working memory to the 12.6 GB resident).
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
STAGES = [
    "dinov3", "ss_flow", "ss_decoder", "shape_upsample", "shape_flow", "texture_flow",
    "shape_decoder", "mesh", "texture_decoder",
]  # fmt: skip
# The component each stage needs resident.
NEEDS = {
    "dinov3": "dinov3", "ss_flow": "ss_flow", "ss_decoder": "ss_decoder",
    "shape_upsample": "shape_decoder", "shape_flow": "shape_flow_1024",
    "texture_flow": "tex_flow_1024", "shape_decoder": "shape_decoder", "mesh": None,
    "texture_decoder": "tex_decoder",
}  # fmt: skip
FLOW_ARGS = dict(
    model_channels=1536, cond_channels=1024, num_blocks=30, num_heads=12, mlp_ratio=5.3334,
    pe_mode="rope", share_mod=True, initialization="scaled", qk_rms_norm=True,
    qk_rms_norm_cross=True, dtype="bfloat16",
)  # fmt: skip
UNET_ARGS = dict(
    model_channels=[1024, 512, 256, 128, 64], latent_channels=32, num_blocks=[4, 16, 8, 4, 0],
    block_type=["SparseConvNeXtBlock3d"] * 5, up_block_type=["SparseResBlockC2S3d"] * 4,
    block_args=[{}] * 5, use_fp16=True,
)  # fmt: skip


def build(name: str):
    """One full-size component with seeded random bfloat16 weights."""
    import torch

    from genesis3d.models.trellis2.config import (
        FlexiDualGridDecoderConfig,
        FlowConfig,
        SparseUnetDecoderConfig,
        StructureDecoderConfig,
    )
    from genesis3d.models.trellis2.flow import ElasticSLatFlowModel, SparseStructureFlowModel
    from genesis3d.models.trellis2.sc_vae import FlexiDualGridVaeDecoder, SparseUnetVaeDecoder
    from genesis3d.models.trellis2.structure_decoder import SparseStructureDecoder
    from genesis3d.nn.dinov3 import DINOv3Config, DINOv3ViT

    builders = {
        "dinov3": lambda: DINOv3ViT(
            DINOv3Config(hidden_size=1024, num_layers=24, intermediate_size=4096, gated_mlp=False)
        ),
        "ss_flow": lambda: SparseStructureFlowModel(
            FlowConfig(resolution=16, in_channels=8, out_channels=8, **FLOW_ARGS)
        ),
        "ss_decoder": lambda: SparseStructureDecoder(
            StructureDecoderConfig(
                out_channels=1, latent_channels=8, num_res_blocks=2, channels=(512, 128, 32)
            )
        ),
        "shape_flow_512": lambda: ElasticSLatFlowModel(
            FlowConfig(resolution=32, in_channels=32, out_channels=32, **FLOW_ARGS)
        ),
        "shape_flow_1024": lambda: ElasticSLatFlowModel(
            FlowConfig(resolution=64, in_channels=32, out_channels=32, **FLOW_ARGS)
        ),
        "tex_flow_1024": lambda: ElasticSLatFlowModel(
            FlowConfig(resolution=64, in_channels=64, out_channels=32, **FLOW_ARGS)
        ),
        "shape_decoder": lambda: FlexiDualGridVaeDecoder(
            FlexiDualGridDecoderConfig.from_args({"resolution": 1024, **UNET_ARGS})
        ),
        "tex_decoder": lambda: SparseUnetVaeDecoder(
            SparseUnetDecoderConfig.from_args(
                {"out_channels": 6, "pred_subdiv": False, **UNET_ARGS}
            )
        ),
    }
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # parameters are created in bfloat16 directly
    try:
        module = builders[name]().eval()
    finally:
        torch.set_default_dtype(previous)
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    for parameter in module.parameters():
        if parameter.dim() > 1:
            fan_in = parameter.numel() // parameter.shape[0]
            bound = 0.5 * (3.0 / fan_in) ** 0.5
            parameter.data.uniform_(-bound, bound, generator=generator)
    return module


def shell_coords(grid: int, radius: float):
    """(T, 4) int32 voxels of a one-voxel spherical shell of ``radius`` x grid voxels."""
    import torch

    axis = torch.arange(grid, dtype=torch.float32) + 0.5 - grid / 2
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    distance = (x * x + y * y + z * z).sqrt()
    occupied = (distance - radius * grid).abs() <= 0.75
    coords = torch.argwhere(occupied).to(torch.int32)
    return torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32), coords], dim=1)


def child(args: argparse.Namespace) -> None:
    """Run the stages under one offload policy, one JSON line per stage."""
    import torch

    from genesis3d.devices import release_memory
    from genesis3d.models.trellis2.sampling import SamplerSettings, sample_dense, sample_sparse
    from genesis3d.nn.sparse.tensor import SparseTensor

    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    sampler = PeakSampler("start")
    generator = torch.Generator().manual_seed(0)
    resident: dict = {}
    if args.offload == "none":
        start = time.perf_counter()
        for name in ["dinov3", "ss_flow", "ss_decoder", "shape_flow_512", "shape_flow_1024",
                     "tex_flow_1024", "shape_decoder", "tex_decoder"]:  # fmt: skip
            resident[name] = build(name)
        print(
            "BUILT " + json.dumps({"build_s": time.perf_counter() - start, "rss_mb": rss_mb()}),
            flush=True,
        )
    shape_settings = SamplerSettings(
        steps=1, guidance_strength=7.5, guidance_rescale=0.5, guidance_interval=(0.6, 1.0), rescale_t=3.0
    )  # fmt: skip
    structure_settings = SamplerSettings(
        steps=1, guidance_strength=7.5, guidance_rescale=0.7, guidance_interval=(0.6, 1.0), rescale_t=5.0
    )  # fmt: skip
    lr_coords, hr_coords = shell_coords(32, args.radius), shell_coords(64, args.radius)
    state: dict = {}

    def noise(coords, channels=32):
        return SparseTensor(coords, torch.randn(len(coords), channels, generator=generator))

    def dinov3(model):
        out = []
        for size in (512, 1024):
            pixels = torch.randn(1, 3, size, size, generator=generator)
            tokens = model(pixels.to(torch.bfloat16)).float()
            out.append(torch.nn.functional.layer_norm(tokens, tokens.shape[-1:]))
        state["cond_512"], state["cond_1024"] = out
        return f"tokens {out[0].shape[1]} + {out[1].shape[1]}"

    def cond(size):
        return state.get(f"cond_{size}", torch.randn(1, 1029 if size == 512 else 4101, 1024))

    def ss_flow(model):
        latent = torch.randn(1, 8, 16, 16, 16, generator=generator)
        context = cond(512)
        trace = sample_dense(model, latent, context, torch.zeros_like(context), structure_settings)
        state["ss_latent"] = trace.samples
        return "4096 tokens, 2 calls"

    def ss_decoder(model):
        latent = state.get("ss_latent", torch.randn(1, 8, 16, 16, 16))
        logits = model(latent)
        return f"logits {tuple(logits.shape)}"

    def shape_upsample(model):
        coords = model.upsample(noise(lr_coords), 4)
        return f"{len(lr_coords)} tokens -> {len(coords)} voxels at 512"

    def shape_flow(model):
        context = cond(1024)
        trace = sample_sparse(
            model, noise(hr_coords), context, torch.zeros_like(context), shape_settings
        )
        state["shape_slat"] = trace.samples
        return f"{len(hr_coords)} tokens, 2 calls"

    def texture_flow(model):
        context = cond(1024)
        shape = state.get("shape_slat", noise(hr_coords))
        trace = sample_sparse(
            model, noise(hr_coords), context, torch.zeros_like(context), shape_settings,
            concat_cond=shape,
        )  # fmt: skip
        state["tex_slat"] = trace.samples
        return f"{len(hr_coords)} tokens, 64 channels in, 2 calls"

    def shape_decoder(model):
        latent = state.get("shape_slat", noise(hr_coords))
        out, subs = model(latent)
        state["shape_out"], state["subs"] = out, [sub.feats for sub in subs]
        levels = " -> ".join(str(len(sub.feats)) for sub in subs)
        return f"voxels {levels} -> {len(out.feats)}"

    def mesh(_model):
        from genesis3d.models.trellis2.dual_grid import flexible_dual_grid_to_mesh

        out = state["shape_out"]
        feats = out.feats.float()
        dual = 2.0 * torch.sigmoid(feats[:, 0:3]) - 0.5
        split = torch.nn.functional.softplus(feats[:, 6:7])
        box = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))
        vertices, faces = flexible_dual_grid_to_mesh(
            out.coords[:, 1:], dual, feats[:, 3:6] > 0, split, box, 1024
        )
        return f"V {len(vertices)} F {len(faces)}"

    def texture_decoder(model):
        latent = state.get("tex_slat", noise(hr_coords))
        out, _ = model(latent, guide_subs=state["subs"])
        return f"PBR voxels {len(out.feats)}"

    runners = {name: fn for name, fn in locals().items() if name in STAGES}
    for stage in args.stages.split(","):
        if stage == "mesh" and "shape_out" not in state:
            continue
        if stage == "texture_decoder" and "subs" not in state:
            continue
        component = NEEDS[stage]
        sampler.mark(stage)
        build_s = 0.0
        if component is not None and component not in resident:
            start = time.perf_counter()
            resident[component] = build(component)
            build_s = time.perf_counter() - start
        model = resident.get(component) if component else None
        params = sum(p.numel() for p in model.parameters()) if model is not None else 0
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            note = runners[stage](model)
        except Exception as error:  # one stage's failure is reported; the others still run
            note = f"FAILED: {type(error).__name__}: {str(error)[:200]}"
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if args.offload == "model" and component is not None:
            del model
            resident.pop(component)
            release_memory(device)
        sampler.mark("between")
        print("STAGE " + json.dumps({
            "stage": stage, "wall_s": wall, "cpu_s": cpu, "build_s": build_s, "params": params,
            "peak_mb": sampler.peaks[stage], "after_mb": rss_mb(), "note": note,
        }), flush=True)  # fmt: skip
    sampler.stop()
    print("DONE " + json.dumps({"peak_mb": max(sampler.peaks.values())}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offload", default="model,none")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--radius", type=float, default=0.25)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.offload = args.policy
        child(args)
        return

    for stage in args.stages.split(","):
        if stage not in STAGES:
            parser.error(f"unknown stage {stage!r}; expected some of {','.join(STAGES)}")
    largest = 0  # parameters of the largest component seen, for the target
    header = (
        f"{'offload':7} {'stage':16} {'wall s':>8} {'cpu s':>8} {'build s':>8} {'peak MB':>8}  note"
    )
    summary = []
    failed: list[str] = []
    for policy in args.offload.split(","):
        command = [sys.executable, __file__, "--child", "--policy", policy, "--threads", str(args.threads),
                   "--radius", str(args.radius), "--stages", args.stages]  # fmt: skip
        print(f"\nrunning offload={policy}, {args.threads} threads, bfloat16 ...", flush=True)
        print(header, flush=True)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        peak = None
        assert process.stdout is not None
        for line in process.stdout:
            kind, _, payload = line.partition(" ")
            if kind == "BUILT":
                built = json.loads(payload)
                print(
                    f"{policy:7} {'(build all)':16} {'':8} {'':8} {built['build_s']:8.1f} {built['rss_mb']:8.0f}",
                    flush=True,
                )
            elif kind == "STAGE":
                row = json.loads(payload)
                largest = max(largest, row["params"])
                print(
                    f"{policy:7} {row['stage']:16} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} "
                    f"{row['build_s']:8.1f} {row['peak_mb']:8.0f}  {row['params'] / 1e6:.0f} M params; "
                    f"{row['note']}",
                    flush=True,
                )
            elif kind == "DONE":
                peak = json.loads(payload)["peak_mb"]
        if process.wait() != 0:
            print(f"offload={policy} failed with exit status {process.returncode}", flush=True)
            failed.append(policy)
            continue
        target = largest * 2 / 2**20 + 2048
        verdict = ("ok" if peak < target else "OVER") if policy == "model" else ""
        summary.append(f"offload={policy}: whole-run peak {peak:.0f} MB {verdict}")
        print(summary[-1], flush=True)
    print(f"\ntarget: offload=model peak below the largest component ({largest / 1e6:.0f} M "
          f"parameters, {largest * 2 / 2**20:.0f} MB in bfloat16) + 2048 MB")  # fmt: skip
    for line in summary:
        print(line)
    if failed:
        sys.exit(f"failed: offload={', '.join(failed)}")


if __name__ == "__main__":
    main()
