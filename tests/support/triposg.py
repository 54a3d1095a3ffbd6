"""A tiny TripoSG checkpoint in the official diffusers layout, with seeded random weights."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from genesis3d.models.triposg.config import TripoSGDiTConfig, TripoSGVAEConfig
from genesis3d.models.triposg.dinov2 import Dinov2Config, Dinov2Model
from genesis3d.models.triposg.transformer import TripoSGDiTModel
from genesis3d.models.triposg.vae import TripoSGVAEModel

TINY_DIT = TripoSGDiTConfig(num_attention_heads=2, width=32, in_channels=16, num_layers=3, cross_attention_dim=32)  # fmt: skip
TINY_VAE = TripoSGVAEConfig(latent_channels=16, num_attention_heads=4, width_encoder=32, width_decoder=48, num_layers_encoder=1, num_layers_decoder=2)  # fmt: skip
TINY_DINO = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
#: latent tokens of a tiny generation (the released model uses 2048)
TINY_TOKENS = 32


def _randomise(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in sorted(module.state_dict().items()):
        if value.dim() > 1:
            value = torch.randn(value.shape, generator=generator) * (0.49 / value.shape[-1]) ** 0.5
        elif key.endswith("bias"):
            value = torch.randn(value.shape, generator=generator) * 0.1
        else:  # norm weights, layer scales, cls/mask tokens of rank 1
            value = 1 + torch.randn(value.shape, generator=generator) * 0.1
        state[key] = value.contiguous()
    return state


def _smooth_vae(state: dict[str, torch.Tensor], config: TripoSGVAEConfig, generator) -> None:
    """Make the SDF a smooth field with a closed surface inside the box (as the fixtures do).

    Plain random weights over 2^7 Fourier frequencies give noise at grid scale; damping the
    high frequencies of the query projection and scaling the head gives shapes.
    """
    weight = state["decoder.proj_query.weight"]
    frequencies = config.embed_frequency
    damping = torch.ones(weight.shape[1])
    for axis in range(3):
        for j in range(frequencies):
            for offset in (3, 3 + 3 * frequencies):
                damping[offset + axis * frequencies + j] = (2.0**-j) ** 1.5
    damped = weight * damping
    state["decoder.proj_query.weight"] = damped * weight.norm() / damped.norm()
    fan_in = state["decoder.proj_out.weight"].shape[1]
    state["decoder.proj_out.weight"] = (
        torch.randn((1, fan_in), generator=generator) * 8 / fan_in**0.5
    )


def _write(root: Path, folder: str, name: str, state: dict, config: dict) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "config.json").write_text(json.dumps(config, indent=1))
    save_file(state, str(root / folder / name))


def write_tiny_triposg(root: Path, seed: int = 0) -> Path:
    """Write a tiny TripoSG folder (official layout, float32) under ``root`` and return it."""
    generator = torch.Generator().manual_seed(seed)
    dit = _randomise(TripoSGDiTModel(TINY_DIT), generator)
    # A small head keeps the sampled latents near unit scale, where the VAE makes shapes.
    dit["proj_out.weight"] = dit["proj_out.weight"] * 0.05
    _write(root, "transformer", "diffusion_pytorch_model.safetensors", dit,
           {"_class_name": "TripoSGDiTModel", "_diffusers_version": "0.30.3", **asdict(TINY_DIT)})  # fmt: skip
    vae = _randomise(TripoSGVAEModel(TINY_VAE), generator)
    _smooth_vae(vae, TINY_VAE, generator)
    _write(root, "vae", "diffusion_pytorch_model.safetensors", vae,
           {"_class_name": "TripoSGVAEModel", "_diffusers_version": "0.30.3", **asdict(TINY_VAE)})  # fmt: skip
    dino = _randomise(Dinov2Model(TINY_DINO), generator)
    _write(root, "image_encoder_dinov2", "model.safetensors", dino,
           {"architectures": ["Dinov2Model"], "model_type": "dinov2", "torch_dtype": "float32",
            "transformers_version": "4.45.2", **{k: v for k, v in asdict(TINY_DINO).items() if v is not None}})  # fmt: skip
    (root / "scheduler").mkdir(parents=True, exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(
            {
                "_class_name": "RectifiedFlowScheduler",
                "num_train_timesteps": 1000,
                "shift": 1.0,
                "use_dynamic_shifting": False,
            }
        )  # fmt: skip
    )
    (root / "feature_extractor_dinov2").mkdir(parents=True, exist_ok=True)
    (root / "feature_extractor_dinov2" / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": {"height": 224, "width": 224},
                "do_center_crop": True,
                "do_normalize": True,
                "do_rescale": True,
                "do_resize": True,
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "image_processor_type": "BitImageProcessor",
                "resample": 3,
                "rescale_factor": 1 / 255,
                "size": {"shortest_edge": 256},
            }
        )  # fmt: skip
    )
    (root / "model_index.json").write_text(json.dumps({"_class_name": "TripoSGPipeline"}))
    return root
