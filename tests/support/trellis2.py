"""A tiny TRELLIS.2 folder in the official layout (``pipeline.json`` + ``ckpts/``), with
seeded random weights.

Random networks make random structures; a few biases are calibrated so a tiny run stays
small and still makes a surface: the occupancy decoder's output bias keeps about 40 latent
voxels occupied, and the subdivision heads keep about a third of the children.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

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

DINO = DINOv3Config(hidden_size=128, num_layers=1, intermediate_size=256, gated_mlp=False)
DINO_REPO = "facebook/dinov3-vitl16-pretrain-lvd1689m"
SS_DECODER = "microsoft/TRELLIS-image-large/ckpts/ss_dec_conv3d_16l8_fp16"
#: occupied latent voxels the calibrated structure decoder aims at (on its 64^3 output)
TARGET_OCCUPIED = 40


def _flow(in_channels: int, out_channels: int) -> dict:
    return {
        "resolution": 16, "in_channels": in_channels, "model_channels": 32,
        "cond_channels": DINO.hidden_size, "out_channels": out_channels, "num_blocks": 1,
        "num_heads": 2, "mlp_ratio": 2.0, "pe_mode": "rope", "share_mod": True,
        "initialization": "scaled", "qk_rms_norm": True, "qk_rms_norm_cross": True,
        "dtype": "bfloat16",
    }  # fmt: skip


_STAGES = {
    "model_channels": [32, 16, 16, 8, 8], "latent_channels": 32, "num_blocks": [1, 1, 1, 1, 0],
    "block_type": ["SparseConvNeXtBlock3d"] * 5, "up_block_type": ["SparseResBlockC2S3d"] * 4,
    "block_args": [{"use_checkpoint": False}] * 5, "use_fp16": True,
}  # fmt: skip
CHECKPOINTS = {
    "sparse_structure_flow_model": ("ckpts/ss_flow_img_dit_1_3B_64_bf16", "SparseStructureFlowModel", _flow(8, 8)),
    "sparse_structure_decoder": (SS_DECODER, "SparseStructureDecoder", {"out_channels": 1, "latent_channels": 8, "num_res_blocks": 1, "num_res_blocks_middle": 1, "channels": [16, 8, 8], "use_fp16": True}),
    "shape_slat_flow_model_512": ("ckpts/slat_flow_img2shape_dit_1_3B_512_bf16", "ElasticSLatFlowModel", _flow(32, 32)),
    "shape_slat_flow_model_1024": ("ckpts/slat_flow_img2shape_dit_1_3B_1024_bf16", "ElasticSLatFlowModel", _flow(32, 32)),
    "shape_slat_decoder": ("ckpts/shape_dec_next_dc_f16c32_fp16", "FlexiDualGridVaeDecoder", {"resolution": 256, **_STAGES}),
    "tex_slat_flow_model_512": ("ckpts/slat_flow_imgshape2tex_dit_1_3B_512_bf16", "ElasticSLatFlowModel", _flow(64, 32)),
    "tex_slat_flow_model_1024": ("ckpts/slat_flow_imgshape2tex_dit_1_3B_1024_bf16", "ElasticSLatFlowModel", _flow(64, 32)),
    "tex_slat_decoder": ("ckpts/tex_dec_next_dc_f16c32_fp16", "SparseUnetVaeDecoder", {"out_channels": 6, "pred_subdiv": False, **_STAGES}),
}  # fmt: skip

# Spec appendix A.
SHAPE_MEAN = [0.781296, 0.018091, -0.495192, -0.558457, 1.060530, 0.093252, 1.518149, -0.933218, -0.732996, 2.604095, -0.118341, -2.143904, 0.495076, -2.179512, -2.130751, -0.996944, 0.261421, -2.217463, 1.260067, -0.150213, 3.790713, 1.481266, -1.046058, -1.523667, -0.059621, 2.220780, 1.621212, 0.877230, 0.567247, -3.175944, -3.186688, 1.578665]  # fmt: skip
SHAPE_STD = [5.972266, 4.706852, 5.445010, 5.209927, 5.320220, 4.547237, 5.020802, 5.444004, 5.226681, 5.683095, 4.831436, 5.286469, 5.652043, 5.367606, 5.525084, 4.730578, 4.805265, 5.124013, 5.530808, 5.619001, 5.103930, 5.417670, 5.269677, 5.547194, 5.634698, 5.235274, 6.110351, 5.511298, 6.237273, 4.879207, 5.347008, 5.405691]  # fmt: skip
TEX_MEAN = [3.501659, 2.212398, 2.226094, 0.251093, -0.026248, -0.687364, 0.439898, -0.928075, 0.029398, -0.339596, -0.869527, 1.038479, -0.972385, 0.126042, -1.129303, 0.455149, -1.209521, 2.069067, 0.544735, 2.569128, -0.323407, 2.293000, -1.925608, -1.217717, 1.213905, 0.971588, -0.023631, 0.106750, 2.021786, 0.250524, -0.662387, -0.768862]  # fmt: skip
TEX_STD = [2.665652, 2.743913, 2.765121, 2.595319, 3.037293, 2.291316, 2.144656, 2.911822, 2.969419, 2.501689, 2.154811, 3.163343, 2.621215, 2.381943, 3.186697, 3.021588, 2.295916, 3.234985, 3.233086, 2.260140, 2.874801, 2.810596, 3.292720, 2.674999, 2.680878, 2.372054, 2.451546, 2.353556, 2.995195, 2.379849, 2.786195, 2.775190]  # fmt: skip


def pipeline_json() -> dict:
    """The official ``pipeline.json`` (spec 1.1) with the tiny folder's model paths."""

    def sampler(strength, rescale, interval, rescale_t):
        return {
            "name": "FlowEulerGuidanceIntervalSampler",
            "args": {"sigma_min": 1e-5},
            "params": {
                "steps": 12, "guidance_strength": strength, "guidance_rescale": rescale,
                "guidance_interval": interval, "rescale_t": rescale_t,
            },
        }  # fmt: skip

    return {
        "name": "Trellis2ImageTo3DPipeline",
        "args": {
            "models": {name: path for name, (path, _, _) in CHECKPOINTS.items()},
            "sparse_structure_sampler": sampler(7.5, 0.7, [0.6, 1.0], 5.0),
            "shape_slat_sampler": sampler(7.5, 0.5, [0.6, 1.0], 3.0),
            "tex_slat_sampler": sampler(1.0, 0.0, [0.6, 0.9], 3.0),
            "shape_slat_normalization": {"mean": SHAPE_MEAN, "std": SHAPE_STD},
            "tex_slat_normalization": {"mean": TEX_MEAN, "std": TEX_STD},
            "image_cond_model": {
                "name": "DinoV3FeatureExtractor",
                "args": {"model_name": DINO_REPO},
            },
            "rembg_model": {"name": "BiRefNet", "args": {"model_name": "briaai/RMBG-2.0"}},
            "default_pipeline_type": "1024_cascade",
        },
    }


def _randomise(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in sorted(module.state_dict().items()):
        if value.dim() > 1:
            fan_in = value[0].numel() if value.dim() > 2 else value.shape[-1]
            value = torch.randn(value.shape, generator=generator) * (0.7 / fan_in) ** 0.5
        elif key.endswith("bias"):
            value = torch.randn(value.shape, generator=generator) * 0.1
        else:  # norm weights, modulations, RMS gammas, layer scales
            value = 1 + torch.randn(value.shape, generator=generator) * 0.1
        state[key] = value.contiguous()
    return state


def _calibrate_structure(decoder: SparseStructureDecoder, state: dict, generator) -> None:
    """Shift the output bias so about TARGET_OCCUPIED coarse voxels are occupied."""
    decoder.load_state_dict(state)
    with torch.no_grad():
        logits = decoder(torch.randn(4, 8, 16, 16, 16, generator=generator))
    pooled = torch.nn.functional.max_pool3d(logits, 2, 2)
    level = torch.quantile(pooled.flatten(1), 1 - TARGET_OCCUPIED / pooled[0].numel(), dim=1)
    state["out_layer.2.bias"] = state["out_layer.2.bias"] - level.mean()


def _save(root: Path, path: str, name: str, args: dict, state: dict) -> None:
    base = root / path
    base.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{base}.json").write_text(json.dumps({"name": name, "args": args}, indent=1))
    save_file(state, f"{base}.safetensors")


def write_tiny_trellis2(root: Path, seed: int = 0) -> Path:
    """Write a tiny TRELLIS.2 folder under ``root`` and return it."""
    generator = torch.Generator().manual_seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, (path, cls_name, args) in CHECKPOINTS.items():
        if cls_name == "SparseStructureFlowModel":
            module = SparseStructureFlowModel(FlowConfig.from_args(args))
        elif cls_name == "ElasticSLatFlowModel":
            module = ElasticSLatFlowModel(FlowConfig.from_args(args))
        elif cls_name == "SparseStructureDecoder":
            module = SparseStructureDecoder(StructureDecoderConfig.from_args(args))
        elif cls_name == "FlexiDualGridVaeDecoder":
            module = FlexiDualGridVaeDecoder(FlexiDualGridDecoderConfig.from_args(args))
        else:
            module = SparseUnetVaeDecoder(SparseUnetDecoderConfig.from_args(args))
        state = _randomise(module, generator)
        if name == "sparse_structure_decoder":
            _calibrate_structure(module, state, generator)
        if name == "shape_slat_decoder":
            for key in [k for k in state if k.endswith("to_subdiv.bias")]:
                state[key] = torch.full_like(state[key], -0.3)
        # The released flows are stored in bfloat16 and the decoders in float16.
        stored = torch.bfloat16 if "flow" in name else torch.float16
        _save(root, path, cls_name, args, {k: v.to(stored) for k, v in state.items()})
    dino = _randomise(DINOv3ViT(DINO), generator)
    dino["embeddings.mask_token"] = torch.zeros(1, 1, DINO.hidden_size)  # in the file, unused
    (root / DINO_REPO).mkdir(parents=True, exist_ok=True)
    save_file(dino, str(root / DINO_REPO / "model.safetensors"))
    (root / "pipeline.json").write_text(json.dumps(pipeline_json(), indent=1))
    return root
