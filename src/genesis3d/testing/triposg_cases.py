"""Adapters that run TripoSG fixture cases through Genesis' implementation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from genesis3d.geometry.isosurface import index_to_world, marching_cubes_indices
from genesis3d.models.triposg.config import (
    RectifiedFlowConfig,
    TripoSGDiTConfig,
    TripoSGVAEConfig,
)
from genesis3d.models.triposg.flash import flash_grid
from genesis3d.models.triposg.grids import HierarchicalStep, dense_grid, hierarchical_grid
from genesis3d.models.triposg.sampling import (
    rectified_flow_sigmas,
    rectified_flow_timesteps,
    sample_latents,
)
from genesis3d.models.triposg.transformer import TripoSGDiTModel
from genesis3d.models.triposg.vae import TripoSGVAEModel, posterior
from genesis3d.weights.loading import load_into

if TYPE_CHECKING:
    from genesis3d.testing.parity import Case


def _loaded(module: nn.Module, case: Case) -> nn.Module:
    load_into(
        module, case.weights(), skip_keys=case.manifest.get("skip_keys", []), source=case.name
    )
    return module.eval()


def _vae(case: Case, config: dict[str, Any]) -> TripoSGVAEModel:
    model = _loaded(TripoSGVAEModel(TripoSGVAEConfig.from_config(config)), case)
    assert isinstance(model, TripoSGVAEModel)
    return model


@torch.inference_mode()
def dit(case: Case) -> dict[str, torch.Tensor]:
    model = _loaded(TripoSGDiTModel(TripoSGDiTConfig.from_config(case.manifest["config"])), case)
    i = case.inputs
    return {"sample": model(i["latents"], i["timestep"], i["encoder_hidden_states"])}


@torch.inference_mode()
def vae_decode(case: Case) -> dict[str, torch.Tensor]:
    model = _vae(case, case.manifest["config"])
    kwargs = case.manifest["call"]["kwargs"]
    field = model.field(case.input("latents"))
    points = case.input(kwargs["sampled_points"])
    chunk = int(kwargs["num_chunks"])
    sample = torch.cat([field(part) for part in points.split(chunk, dim=1)], dim=1)
    return {"sample": sample, "kv_cache": field.kv_cache}


@torch.inference_mode()
def vae_encode(case: Case) -> dict[str, torch.Tensor]:
    model = _vae(case, case.manifest["config"])
    x = case.input("x")
    # The fixture fixes the subsample: numpy's preselection, then its FPS result.
    selected = x[:, case.input("rng_indices")]
    flat = selected.reshape(-1, x.shape[-1])
    queries = flat[case.input("fps_indices")].view(x.shape[0], -1, x.shape[-1])
    parameters = model.encode(x, queries)
    mean, logvar = posterior(parameters)
    return {"mean": mean, "logvar": logvar, "parameters": parameters}


@torch.inference_mode()
def sampler(case: Case) -> dict[str, torch.Tensor]:
    model_block = case.manifest["model"]
    model = _loaded(TripoSGDiTModel(TripoSGDiTConfig.from_config(model_block["config"])), case)
    scheduler = RectifiedFlowConfig.from_config(case.manifest["config"])
    kwargs = case.manifest["call"]["kwargs"]
    steps = int(kwargs["num_inference_steps"])
    outputs: dict[str, torch.Tensor] = {}
    pending: dict[str, torch.Tensor] = {}

    def record_output(branch: str, output: torch.Tensor) -> None:
        pending[branch] = output

    def record_step(step: int, _total: int, latents: torch.Tensor) -> None:
        outputs[f"step{step}_latents"] = latents
        outputs[f"step{step}_model_output"] = torch.cat([pending["uncond"], pending["cond"]])

    latents = sample_latents(
        model,
        case.input(kwargs["latents"]),
        case.input("image_embeds"),
        steps=steps,
        guidance_scale=float(kwargs["guidance_scale"]),
        shift=scheduler.shift,
        callback=record_step,
        on_model_output=record_output,
    )
    return {
        "latents": latents,
        "timesteps": torch.from_numpy(rectified_flow_timesteps(steps, scheduler.shift)),
        "sigmas": torch.from_numpy(rectified_flow_sigmas(steps, scheduler.shift)),
        **outputs,
    }


def _extraction_field(case: Case) -> tuple[TripoSGVAEModel, Any]:
    model = _vae(case, case.manifest["model"]["config"])
    field = model.field(case.input("latents"))
    return model, lambda points: field(points[None])[0, :, 0]


def _bounds(case: Case) -> float:
    bounds = case.manifest["call"]["kwargs"]["bounds"]
    if bounds[:3] != [-b for b in bounds[3:]] or len(set(bounds[3:])) != 1:
        raise ValueError(f"only a centred cube is supported, got bounds {bounds}")
    return float(bounds[3])


def _official_mesh(grid: torch.Tensor, depth: int, bounds: float) -> dict[str, torch.Tensor]:
    """Marching cubes and upstream's vertex mapping (divides by 2^depth: the shrink quirk)."""
    vertices, faces = marching_cubes_indices(grid.float().numpy(), 0.0)
    n = grid.shape[0]
    world = index_to_world(vertices, (n,) * 3, (-bounds,) * 3, (bounds,) * 3, divisor=2**depth)
    return {"vertices": torch.from_numpy(world), "faces": torch.from_numpy(faces)}


@torch.inference_mode()
def dense_extract(case: Case) -> dict[str, torch.Tensor]:
    _, field = _extraction_field(case)
    kwargs = case.manifest["call"]["kwargs"]
    depth, bounds = int(kwargs["hierarchical_octree_depth"]), _bounds(case)
    if int(kwargs["dense_octree_depth"]) != depth:
        raise ValueError("dense_extract needs dense_octree_depth == hierarchical_octree_depth")
    grid = dense_grid(field, bounds=bounds, octree_depth=depth)
    axis = torch.linspace(-bounds, bounds, 2**depth, dtype=torch.float16).float()
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return {
        "sdf_values": field(points).view(grid.values.shape),
        "grid_logits": grid.values.to(torch.float16),
        "axis_coords": axis.expand(3, -1),
        **_official_mesh(grid.values, depth, bounds),
    }


@torch.inference_mode()
def hierarchical_extract(case: Case) -> dict[str, torch.Tensor]:
    _, field = _extraction_field(case)
    kwargs = case.manifest["call"]["kwargs"]
    depth, bounds = int(kwargs["hierarchical_octree_depth"]), _bounds(case)
    steps: list[HierarchicalStep] = []
    grid = hierarchical_grid(
        field,
        bounds=bounds,
        dense_depth=int(kwargs["dense_octree_depth"]),
        final_depth=depth,
        steps=steps,
    )
    return {
        "coarse_logits": steps[0].coarse,
        "refined_mask": steps[-1].refined,
        "grid_logits": grid.values.to(torch.float16),
        **_official_mesh(grid.values, depth, bounds),
    }


@torch.inference_mode()
def flash_extract(case: Case) -> dict[str, torch.Tensor]:
    _, field = _extraction_field(case)
    kwargs = case.manifest["call"]["kwargs"]
    sampled = flash_grid(
        field,
        bounds=_bounds(case),
        octree_depth=int(kwargs["octree_depth"]),
        min_resolution=int(kwargs["min_resolution"]),
        mini_grid_num=int(kwargs["mini_grid_num"]),
        batch_points=int(kwargs["num_chunks"]),
        keep_levels=True,
    )
    out = {"level0_logits": sampled.levels[0].values}
    for number, level in enumerate(sampled.levels[1:], start=1):
        out[f"level{number}_indices"] = level.indices
        out[f"level{number}_logits"] = level.values
    return out


ADAPTERS: dict[str, Callable[[Case], dict[str, torch.Tensor]]] = {
    "triposg.models.transformers.triposg_transformer.TripoSGDiTModel": dit,
    "triposg.models.autoencoders.autoencoder_kl_triposg.TripoSGVAEModel": lambda case: (
        vae_encode(case) if case.manifest["call"]["method"] == "encode" else vae_decode(case)
    ),
    "triposg.pipelines.pipeline_triposg.TripoSGPipeline.__call__ (steps 1-6: conditioning, timesteps, latents, denoising loop)": sampler,
    "triposg.inference_utils.hierarchical_extract_geometry": lambda case: (
        dense_extract(case)
        if case.manifest["call"]["kwargs"]["dense_octree_depth"]
        == case.manifest["call"]["kwargs"]["hierarchical_octree_depth"]
        else hierarchical_extract(case)
    ),
    "triposg.inference_utils.flash_extract_geometry": flash_extract,
}


def check_key_inventories(keys_dir: Path) -> list[str]:
    """One line per inventory file: ``PASS|FAIL <file> <detail>``."""
    from genesis3d.testing.triposplat_cases import compare_inventory

    configs = json.loads((keys_dir / "configs.json").read_text())
    builders: dict[str, Callable[[], nn.Module]] = {
        "transformer.json": lambda: TripoSGDiTModel(
            TripoSGDiTConfig.from_config(configs["transformer"])
        ),
        "vae.json": lambda: TripoSGVAEModel(TripoSGVAEConfig.from_config(configs["vae"])),
    }
    lines = []
    for file in sorted(keys_dir.glob("*.json")):
        if file.name == "configs.json":
            continue
        builder = builders.get(file.name)
        if builder is None:
            lines.append(f"FAIL {file.name} no module of Genesis is built for this inventory")
            continue
        inventory = json.loads(file.read_text())
        with torch.device("meta"):
            module = builder()
        problems = compare_inventory(module, inventory)
        numel = sum(int(np.prod(shape)) for shape, _ in inventory.values())
        status = "FAIL" if problems else "PASS"
        lines.append(
            f"{status} {file.name} tensors={len(inventory)} values={numel} {'; '.join(problems)}".rstrip()
        )
    return lines
