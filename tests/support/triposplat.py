"""A tiny TripoSplat checkpoint in the official layout, with seeded random weights."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from genesis3d.models.triposplat.config import (
    FlowModelConfig,
    GaussianDecoderConfig,
    OctreeDecoderConfig,
)
from genesis3d.models.triposplat.decoders import OctreeGaussianDecoder
from genesis3d.models.triposplat.encoders import Flux2VAEEncoder
from genesis3d.models.triposplat.flow_model import LatentSeqMMFlowModel
from genesis3d.nn.dinov3 import DINOv3Config, DINOv3ViT

TINY_FLOW = FlowModelConfig(
    model_channels=64, cond_channels=64, cond2_channels=128, num_refiner_blocks=1,
    num_blocks=1, num_heads=2, num_head_channels=32, mlp_ratio=2,
)  # fmt: skip
TINY_OCTREE = OctreeDecoderConfig(model_channels=64, num_blocks=1, num_heads=2, mlp_ratio=2)
TINY_GAUSSIANS = GaussianDecoderConfig(model_channels=64, num_blocks=1, num_heads=2, mlp_ratio=2)
TINY_DINO = DINOv3Config(hidden_size=64, num_layers=1, intermediate_size=96)


def _randomise(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in module.state_dict().items():
        if value.is_floating_point() and "running_var" not in key:
            fan_in = value.shape[-1] if value.dim() > 1 else 1
            scale = 0.7 / fan_in**0.5 if value.dim() > 1 else 0.1
            value = torch.randn(value.shape, generator=generator) * scale + (
                1.0
                if key.endswith(("gamma", "lambda1", "norm1.weight", "norm2.weight", "norm.weight"))
                else 0.0
            )
        state[key] = value.contiguous()
    return state


def write_tiny_triposplat(root: Path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Write the four required files under ``root`` (the layout root) and return it."""
    generator = torch.Generator().manual_seed(seed)

    def save(state: dict[str, torch.Tensor], relative: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}, str(path)
        )

    save(
        _randomise(LatentSeqMMFlowModel(TINY_FLOW), generator),
        "diffusion_models/triposplat_fp16.safetensors",
    )
    decoder = OctreeGaussianDecoder(TINY_OCTREE, TINY_GAUSSIANS)
    state = _randomise(decoder, generator)
    # The two Gaussian-decoder buffers are fixed functions of the representation.
    state["gs.points_offset_perturbation"] = decoder.gs.points_offset_perturbation.clone()
    state["gs.base_offset_scale"] = decoder.gs.base_offset_scale.clone()
    save(state, "vae/triposplat_vae_decoder_fp16.safetensors")
    save(_randomise(DINOv3ViT(TINY_DINO), generator), "clip_vision/dino_v3_vit_h.safetensors")
    vae = _randomise(Flux2VAEEncoder(channels=(32, 32, 32, 32), layers=1), generator)
    vae["decoder.conv_in.weight"] = torch.zeros(
        4, 32, 3, 3
    )  # the file's decoder is present and unused
    vae["bn.running_var"] = torch.rand(128, generator=generator) + 0.5
    save(vae, "vae/flux2-vae.safetensors")
    return root


def write_tiny_birefnet(root: Path, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Write a tiny BiRefNet at ``background_removal/birefnet.safetensors`` under ``root``."""
    from genesis3d.models.birefnet import BiRefNet, BiRefNetConfig

    generator = torch.Generator().manual_seed(seed)
    state = _randomise(BiRefNet(BiRefNetConfig.tiny()), generator)
    path = root / "background_removal" / "birefnet.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}, str(path)
    )
    return path
