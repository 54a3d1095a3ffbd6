"""The TripoSG components in the official folder layout, their loaders and their store (the
shared :class:`genesis3d.models.store.ComponentStore` policies).

Layout (HF ``VAST-AI/TripoSG``, a diffusers pipeline folder; spec 2.1)::

    model_index.json
    transformer/config.json, diffusion_pytorch_model.safetensors
    vae/config.json, diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json
    image_encoder_dinov2/config.json, model.safetensors
    feature_extractor_dinov2/preprocessor_config.json
    background_removal/birefnet.safetensors    (optional, Genesis: pictures without alpha)

Precision when none is asked for: float16 on CUDA and MPS (the official script runs
float16), float32 on the CPU.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genesis3d.errors import ConfigError, WeightsError
from genesis3d.models.store import ComponentStore as BaseComponentStore
from genesis3d.models.store import parse_dtype
from genesis3d.models.triposg.config import (
    RectifiedFlowConfig,
    TripoSGDiTConfig,
    TripoSGVAEConfig,
)
from genesis3d.models.triposg.dinov2 import Dinov2Config, Dinov2Model
from genesis3d.models.triposg.transformer import TripoSGDiTModel
from genesis3d.models.triposg.vae import TripoSGVAEModel
from genesis3d.weights.loading import load_into, load_safetensors

logger = logging.getLogger(__name__)

SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
PREPROCESSOR_CONFIG = "feature_extractor_dinov2/preprocessor_config.json"


@dataclass(frozen=True)
class Component:
    """One network of the layout: its config and weights files, licence and builder."""

    name: str
    config: str
    weights: str
    license: str
    required: bool = True


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("transformer", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors", "MIT (VAST)"),
        Component("vae", "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "MIT (VAST)"),
        Component("image_encoder", "image_encoder_dinov2/config.json", "image_encoder_dinov2/model.safetensors", "Apache-2.0 (Meta DINOv2)"),
        Component("birefnet", "", "background_removal/birefnet.safetensors", "MIT (ZhengPeng7/BiRefNet)", required=False),
    )
}  # fmt: skip


def read_json(root: Path, relative: str) -> dict[str, Any]:
    path = root / relative
    if not path.is_file():
        raise WeightsError(f"{relative} not found in {root}; the folder is not TripoSG's layout")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path} is not valid JSON ({error}); download it again") from error


def build_module(name: str, config: Mapping[str, Any]) -> nn.Module:
    """The component's module from its config dict (on the current default device)."""
    if name == "transformer":
        return TripoSGDiTModel(TripoSGDiTConfig.from_config(config))
    if name == "vae":
        return TripoSGVAEModel(TripoSGVAEConfig.from_config(config))
    if name == "image_encoder":
        return Dinov2Model(Dinov2Config.from_config(config))
    raise KeyError(name)


def runtime_dtype(device: torch.device, dtype: str | None) -> torch.dtype:
    """The precision of every network under the pipeline's dtype policy."""
    asked = parse_dtype(dtype)
    if asked is not None:
        return asked
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def load_component(root: Path, name: str, *, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Build a component on the meta device and load its weights strictly onto ``device``."""
    component = COMPONENTS[name]
    if name == "birefnet":
        from genesis3d.models.birefnet import load_birefnet

        path = root / component.weights
        if not path.is_file():
            raise WeightsError(
                f"{component.weights} not found in {root}: pictures without transparency need "
                "it; pass a picture with alpha, or choose --bg auto (plain backdrop) or --bg rembg"
            )
        return load_birefnet(path, device=device, dtype=dtype)
    config = read_json(root, component.config)
    with torch.device("meta"):
        module = build_module(name, config)
    path = root / component.weights
    state = load_safetensors(path, dtype=dtype, device=device)
    load_into(module, state, source=str(path), assign=True)
    return module.to(device).eval()


def verify_component(root: Path, name: str) -> list[str]:
    """Problems of one component's files (empty when they are complete and fit the model)."""
    from genesis3d.weights.loading import read_header

    component = COMPONENTS[name]
    path = root / component.weights
    if not path.is_file():
        optional = "" if component.required else " (optional: only for pictures without alpha)"
        return [f"{component.weights}: missing{optional}"]
    try:
        header = read_header(path)
        if name == "birefnet":
            from genesis3d.models.birefnet import BiRefNet
            from genesis3d.models.birefnet.checkpoint import config_from_header

            with torch.device("meta"):
                module = BiRefNet(config_from_header(header, str(path)))
        else:
            with torch.device("meta"):
                module = build_module(name, read_json(root, component.config))
    except (WeightsError, ConfigError, KeyError, ValueError, RuntimeError) as error:
        return [f"{component.weights}: {error}"]
    expected = module.state_dict()
    problems = []
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing:
        problems.append(
            f"{component.weights}: {len(missing)} missing keys, e.g. {', '.join(missing[:5])}"
        )
    if unexpected:
        problems.append(
            f"{component.weights}: {len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:5])}"
        )
    for key in sorted(set(header) & set(expected)):
        if tuple(header[key].shape) != tuple(expected[key].shape):
            problems.append(
                f"{component.weights}: {key} has shape {header[key].shape}, the model needs {tuple(expected[key].shape)}"
            )
    return problems


def verify(folder: str | Path) -> dict[str, Any]:
    """Check every component file; ``ok`` is False when a required one has a problem."""
    root = Path(folder)
    files, ok = [], True
    for name, component in COMPONENTS.items():
        path = root / component.weights
        problems = verify_component(root, name)
        ok = ok and (not problems or not component.required)
        files.append(
            {
                "component": name,
                "file": component.weights,
                "required": component.required,
                "license": component.license,
                "size_mb": path.stat().st_size / 1e6 if path.is_file() else 0.0,
                "problems": problems,
            }
        )
    return {"folder": str(root), "ok": ok, "files": files}


def scheduler_config(root: Path) -> RectifiedFlowConfig:
    return RectifiedFlowConfig.from_config(read_json(root, SCHEDULER_CONFIG))


class ComponentStore(BaseComponentStore):
    """The TripoSG networks under the pipeline's policies (see
    :class:`genesis3d.models.store.ComponentStore`); under ``offload="model"`` the peak is
    about the largest network (the 1.4 B-parameter transformer) plus activations."""

    def __init__(
        self, root: Path, *, device: str = "auto", dtype: str | None = None, offload: str = "none"
    ) -> None:
        super().__init__(root, device=device, offload=offload)
        self.dtype = runtime_dtype(self.device, dtype)
        self.scheduler = scheduler_config(self.root)
        self.load_required(name for name, component in COMPONENTS.items() if component.required)

    def load(self, name: str) -> nn.Module:
        logger.info("%s runs in %s", name, self.dtype)
        return load_component(self.root, name, device=self.device, dtype=self.dtype)
