"""Adapters that run TRELLIS.2 fixture cases through Genesis' implementation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from genesis3d.models.trellis2.config import (
    FlexiDualGridDecoderConfig,
    FlowConfig,
    SparseUnetDecoderConfig,
    SparseUnetEncoderConfig,
    StructureDecoderConfig,
)
from genesis3d.models.trellis2.dual_grid import flexible_dual_grid_to_mesh
from genesis3d.models.trellis2.flow import ElasticSLatFlowModel, SparseStructureFlowModel
from genesis3d.models.trellis2.sampling import SamplerSettings, sample_dense, sample_sparse
from genesis3d.models.trellis2.sc_vae import (
    FlexiDualGridVaeDecoder,
    SparseUnetVaeDecoder,
    SparseUnetVaeEncoder,
)
from genesis3d.models.trellis2.structure_decoder import SparseStructureDecoder
from genesis3d.nn.sparse.tensor import SparseTensor
from genesis3d.weights.loading import load_into

if TYPE_CHECKING:
    from genesis3d.testing.parity import Case

_MODULES = "trellis2.models."
FLOW_DENSE = _MODULES + "sparse_structure_flow.SparseStructureFlowModel"
FLOW_SPARSE = _MODULES + "structured_latent_flow.ElasticSLatFlowModel"
FLOW_SPARSE_PLAIN = _MODULES + "structured_latent_flow.SLatFlowModel"
STRUCTURE_DECODER = _MODULES + "sparse_structure_vae.SparseStructureDecoder"
SHAPE_DECODER = _MODULES + "sc_vaes.fdg_vae.FlexiDualGridVaeDecoder"
SHAPE_ENCODER = _MODULES + "sc_vaes.fdg_vae.FlexiDualGridVaeEncoder"
TEXTURE_DECODER = _MODULES + "sc_vaes.sparse_unet_vae.SparseUnetVaeDecoder"
TEXTURE_ENCODER = _MODULES + "sc_vaes.sparse_unet_vae.SparseUnetVaeEncoder"
DUAL_GRID_TO_MESH = "o_voxel.convert.flexible_dual_grid_to_mesh"
SAMPLER = "trellis2.pipelines.samplers.flow_euler.FlowEulerGuidanceIntervalSampler"

BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    FLOW_DENSE: lambda args: SparseStructureFlowModel(FlowConfig.from_args(args)),
    FLOW_SPARSE: lambda args: ElasticSLatFlowModel(FlowConfig.from_args(args)),
    FLOW_SPARSE_PLAIN: lambda args: ElasticSLatFlowModel(FlowConfig.from_args(args)),
    STRUCTURE_DECODER: lambda args: SparseStructureDecoder(StructureDecoderConfig.from_args(args)),
    SHAPE_DECODER: lambda args: FlexiDualGridVaeDecoder(FlexiDualGridDecoderConfig.from_args(args)),
    TEXTURE_DECODER: lambda args: SparseUnetVaeDecoder(SparseUnetDecoderConfig.from_args(args)),
    SHAPE_ENCODER: lambda args: SparseUnetVaeEncoder(SparseUnetEncoderConfig.from_args(args)),
    TEXTURE_ENCODER: lambda args: SparseUnetVaeEncoder(SparseUnetEncoderConfig.from_args(args)),
}


def build(official: str, args: dict[str, Any]) -> nn.Module:
    """Genesis' module for an official class path and its constructor args."""
    if official not in BUILDERS:
        raise KeyError(f"no Genesis module for {official}")
    return BUILDERS[official](args)


def _loaded(case: Case, official: str, args: dict[str, Any], skip: list[str]) -> nn.Module:
    module = build(official, args)
    # Buffers the official modules keep outside their checkpoints (rope_phases) do not exist
    # here at all; only skip keys our module has are passed on.
    present = set(module.state_dict())
    load_into(module, case.weights(), skip_keys=[k for k in skip if k in present], source=case.name)
    return module.eval()


def _module(case: Case) -> nn.Module:
    m = case.manifest
    return _loaded(case, m["official"], m["config"], m.get("skip_keys", []))


def _sparse(case: Case, name: str) -> SparseTensor:
    spec = case.manifest["sparse_inputs"][name]
    return SparseTensor(case.input(spec["coords"]), case.input(spec["feats"]))


def _sparse_out(name: str, value: SparseTensor) -> dict[str, torch.Tensor]:
    return {f"{name}.coords": value.coords, f"{name}.feats": value.feats}


@torch.inference_mode()
def flow(case: Case) -> dict[str, torch.Tensor]:
    model = _module(case)
    i = case.inputs
    if isinstance(model, SparseStructureFlowModel):
        return {"out": model(i["x"], i["t"], i["cond"])}
    concat = case.manifest["call"]["kwargs"].get("concat_cond")
    out = model(_sparse(case, "x"), i["t"], i["cond"], _sparse(case, concat) if concat else None)
    return _sparse_out("out", out)


@torch.inference_mode()
def structure_decoder(case: Case) -> dict[str, torch.Tensor]:
    return {"out": _module(case)(case.input("z"))}


@torch.inference_mode()
def sampler(case: Case) -> dict[str, torch.Tensor]:
    m = case.manifest
    model = _loaded(case, m["model"]["official"], m["model"]["config"], m["model"]["skip_keys"])
    kwargs = m["call"]["kwargs"]
    settings = SamplerSettings(
        steps=int(kwargs["steps"]),
        rescale_t=float(kwargs["rescale_t"]),
        guidance_strength=float(kwargs["guidance_strength"]),
        guidance_rescale=float(kwargs["guidance_rescale"]),
        guidance_interval=tuple(kwargs["guidance_interval"]),
        sigma_min=float(m["config"]["sigma_min"]),
    )
    i = case.inputs
    if "noise" in m.get("sparse_inputs", {}):
        result = sample_sparse(model, _sparse(case, "noise"), i["cond"], i["neg_cond"], settings)
        out = _sparse_out("samples", result.samples)
        for index, x_t in enumerate(result.x_t[:-1]):
            out.update(_sparse_out(f"pred_x_t.{index}", x_t))
        for index, x_0 in enumerate(result.x_0):
            out.update(_sparse_out(f"pred_x_0.{index}", x_0))
        return out
    result = sample_dense(model, i["noise"], i["cond"], i["neg_cond"], settings)
    out = {"samples": result.samples}
    out.update({f"pred_x_t.{k}": v for k, v in enumerate(result.x_t[:-1])})
    out.update({f"pred_x_0.{k}": v for k, v in enumerate(result.x_0)})
    return out


@torch.inference_mode()
def shape_decoder(case: Case) -> dict[str, torch.Tensor]:
    model = _module(case)
    assert isinstance(model, FlexiDualGridVaeDecoder)
    out, subs = model(_sparse(case, "x"))
    result = _sparse_out("out_raw", out)
    for index, sub in enumerate(subs):
        result.update(_sparse_out(f"subs.{index}", sub))
    dual, intersected, split = model.fields(out)
    result.update(dual_vertices=dual, intersected=intersected, split_weight=split)
    for item, (vertices, faces) in enumerate(model.to_meshes(out)):
        result[f"mesh.{item}.vertices"] = vertices
        result[f"mesh.{item}.faces"] = faces
    return result


@torch.inference_mode()
def texture_decoder(case: Case) -> dict[str, torch.Tensor]:
    names = case.manifest["call"]["kwargs"]["guide_subs"]
    guides = [_sparse(case, name).feats for name in names]
    out, _ = _module(case)(_sparse(case, "x"), guides)
    return _sparse_out("out", out)


def dual_grid_to_mesh(case: Case) -> dict[str, torch.Tensor]:
    call = case.manifest["call"]
    coords, dual, flags, split = (None if a is None else case.input(a) for a in call["args"])
    kwargs = call["kwargs"]
    vertices, faces = flexible_dual_grid_to_mesh(
        coords, dual, flags, split, kwargs["aabb"], int(kwargs["grid_size"])
    )
    return {"vertices": vertices, "faces": faces}


ADAPTERS = {
    SHAPE_DECODER: shape_decoder,
    TEXTURE_DECODER: texture_decoder,
    DUAL_GRID_TO_MESH: dual_grid_to_mesh,
    FLOW_DENSE: flow,
    FLOW_SPARSE: flow,
    STRUCTURE_DECODER: structure_decoder,
    SAMPLER: sampler,
}


def compare_inventory(module: nn.Module, inventory: dict[str, Any], skip: list[str]) -> list[str]:
    """Differences of names and shapes between a module's state_dict and an inventory.

    The runtime dtypes of the inventory are those of the official module after its own
    precision cast; here precision is a pipeline policy applied when loading, so only names
    and shapes are part of the layout. Skip keys (buffers outside the checkpoints) are not
    expected in the module.
    """
    state = module.state_dict()
    expected = {k: v for k, v in inventory.items() if k not in skip}
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing {len(missing)} (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} (e.g. {unexpected[:3]})")
    for key in sorted(set(state) & set(expected)):
        shape = expected[key][0]
        if list(state[key].shape) != list(shape):
            problems.append(f"{key}: {list(state[key].shape)} != {shape}")
    return problems


def check_key_inventories(keys_dir: Path) -> list[str]:
    """One line per inventory file: ``PASS|FAIL <file> <detail>``."""
    lines = []
    for file in sorted(keys_dir.glob("*.json")):
        entry = json.loads(file.read_text())
        official = entry["official"]
        if official not in BUILDERS:
            lines.append(f"FAIL {file.name} no module of Genesis is built for {official}")
            continue
        with torch.device("meta"):
            module = build(official, entry["args"])
        problems = compare_inventory(module, entry["keys"], entry.get("skip_keys", []))
        numel = sum(int(np.prod(shape)) for shape, _ in entry["keys"].values())
        status = "FAIL" if problems else "PASS"
        detail = f"tensors={len(entry['keys'])} values={numel} {'; '.join(problems)}".rstrip()
        lines.append(f"{status} {file.name} {detail}")
    return lines
