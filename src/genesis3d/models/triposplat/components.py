"""The five TripoSplat components: their files, licences, loaders and their store (the
shared :class:`genesis3d.models.store.ComponentStore` policies).

Precision map (spec 8.1), used when no dtype is given: on CUDA the flow DiT, the decoders
and BiRefNet run in float16 and the encoders in bfloat16; on Apple MPS everything runs in
float16; on the CPU everything runs in float32 (16-bit matmuls are slow there, and int8 is
never used: it desaturates colour).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genesis3d.errors import ConfigError, WeightsError
from genesis3d.models.store import ComponentStore as BaseComponentStore
from genesis3d.models.store import parse_dtype
from genesis3d.models.triposplat.checkpoint import (
    flow_model_config,
    gaussian_decoder_config,
    octree_decoder_config,
)
from genesis3d.models.triposplat.decoders import OctreeGaussianDecoder
from genesis3d.models.triposplat.flow_model import LatentSeqMMFlowModel
from genesis3d.weights.loading import load_into, load_safetensors, read_header

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One weights file of the layout.

    Attributes:
        name: component name used by the pipeline.
        file: path relative to the layout root.
        license: licence of the weights as distributed.
        required: needed for every call (BiRefNet is needed only without a real alpha).
        cuda_dtype: runtime precision on CUDA (spec 8.1).
        skip_prefixes: file keys the component does not use (they are not loaded).
    """

    name: str
    file: str
    license: str
    required: bool
    cuda_dtype: torch.dtype
    skip_prefixes: tuple[str, ...] = ()


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("flow_model", "diffusion_models/triposplat_fp16.safetensors", "MIT (VAST)", True, torch.float16),
        Component("decoder", "vae/triposplat_vae_decoder_fp16.safetensors", "MIT (VAST)", True, torch.float16),
        Component("dinov3", "clip_vision/dino_v3_vit_h.safetensors", "DINOv3 License (Meta)", True, torch.bfloat16, ("embeddings.mask_token",)),
        Component("flux2_vae", "vae/flux2-vae.safetensors", "Apache-2.0 (Black Forest Labs)", True, torch.bfloat16, ("decoder.", "post_quant_conv.")),
        Component("birefnet", "background_removal/birefnet.safetensors", "MIT (ZhengPeng7/BiRefNet)", False, torch.float16),
    )
}  # fmt: skip


def runtime_dtype(component: Component, device: torch.device, dtype: str | None) -> torch.dtype:
    """The precision a component runs in under the pipeline's dtype policy."""
    asked = parse_dtype(dtype)
    if asked is not None:
        return asked
    if device.type == "cuda":
        return component.cuda_dtype
    if device.type == "mps":
        return torch.float16
    return torch.float32


def build_module(name: str, header: dict[str, Any], source: str) -> nn.Module:
    """Build a component's module (on the current default device) from its file header."""
    if name == "flow_model":
        return LatentSeqMMFlowModel(flow_model_config(header, source=source))
    if name == "decoder":
        return OctreeGaussianDecoder(
            octree_decoder_config(header, source=source),
            gaussian_decoder_config(header, source=source),
        )
    if name == "dinov3":
        from genesis3d.models.triposplat.encoders import build_dinov3

        return build_dinov3(header, source)
    if name == "flux2_vae":
        from genesis3d.models.triposplat.encoders import build_flux2_vae_encoder

        return build_flux2_vae_encoder(header, source)
    if name == "birefnet":
        from genesis3d.models.birefnet import BiRefNet
        from genesis3d.models.birefnet.checkpoint import config_from_header

        return BiRefNet(config_from_header(header, source))
    raise KeyError(name)


def used_keys(component: Component, header: dict[str, Any]) -> list[str]:
    return [key for key in header if not key.startswith(component.skip_prefixes)]


def load_component(root: Path, name: str, *, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Load one component strictly from the layout root onto ``device`` in ``dtype``."""
    component = COMPONENTS[name]
    path = root / component.file
    if not path.is_file():
        hint = (
            ""
            if component.required
            else " (needed only for pictures without transparency; pass a picture with alpha or --bg auto)"
        )
        raise WeightsError(f"{component.file} not found in {root}{hint}")
    header = read_header(path)
    with torch.device("meta"):
        module = build_module(name, header, str(path))
    state = load_safetensors(path, dtype=dtype, device=device, keys=used_keys(component, header))
    load_into(module, state, source=str(path), assign=True)
    # Buffers computed at build time (not in the file) live on the CPU: move them along.
    return module.to(device).eval()


def verify_component(root: Path, name: str) -> list[str]:
    """Problems of one component file (empty when it is complete and fits the model)."""
    component = COMPONENTS[name]
    path = root / component.file
    if not path.is_file():
        return [
            f"{component.file}: missing"
            + ("" if component.required else " (optional: only for pictures without alpha)")
        ]
    try:
        header = read_header(path)
        with torch.device("meta"):
            module = build_module(name, header, str(path))
    except (WeightsError, ConfigError, KeyError, ValueError, RuntimeError) as error:
        return [f"{component.file}: {error}"]
    expected = module.state_dict()
    keys = set(used_keys(component, header))
    problems = []
    missing = sorted(set(expected) - keys)
    unexpected = sorted(keys - set(expected))
    if missing:
        problems.append(
            f"{component.file}: {len(missing)} missing keys, e.g. {', '.join(missing[:5])}"
        )
    if unexpected:
        problems.append(
            f"{component.file}: {len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:5])}"
        )
    for key in sorted(keys & set(expected)):
        info = header[key]
        if tuple(info.shape) != tuple(expected[key].shape):
            problems.append(
                f"{component.file}: {key} has shape {info.shape}, the model needs {tuple(expected[key].shape)}"
            )
        float_expected = expected[key].is_floating_point()
        if float_expected and info.dtype not in ("F16", "BF16", "F32"):
            problems.append(
                f"{component.file}: {key} is stored as {info.dtype}; expected a 16- or 32-bit float"
            )
    return problems


class ComponentStore(BaseComponentStore):
    """The TripoSplat components under the pipeline's policies (see
    :class:`genesis3d.models.store.ComponentStore`); BiRefNet is optional."""

    def __init__(
        self, root: Path, *, device: str = "auto", dtype: str | None = None, offload: str = "none"
    ) -> None:
        super().__init__(root, device=device, offload=offload)
        self.dtype = dtype
        for component in COMPONENTS.values():
            runtime_dtype(component, self.device, dtype)  # refuse a bad dtype before loading
        self.load_required(name for name, component in COMPONENTS.items() if component.required)

    def load(self, name: str) -> nn.Module:
        dtype = runtime_dtype(COMPONENTS[name], self.device, self.dtype)
        logger.info("%s runs in %s", name, dtype)
        return load_component(self.root, name, device=self.device, dtype=dtype)


def image_features(dino: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """feature1 (1, 4101, 1280) float32 of the prepared picture (1, 3, 1024, 1024) in [0, 1]."""
    from genesis3d.models.triposplat.encoders import encode_feature1

    return encode_feature1(dino, pixels)


def vae_features(vae: nn.Module, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """feature2 (1, 4101, 128) float32, with the seeded posterior sample."""
    from genesis3d.models.triposplat.encoders import encode_feature2

    return encode_feature2(vae, pixels, generator)


def matte(birefnet: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 alpha of an (H, W, 3) uint8 picture."""
    from genesis3d.models.birefnet import predict_alpha

    return predict_alpha(birefnet, rgb)
