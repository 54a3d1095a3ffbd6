"""TRELLIS.2 modules beyond the fixtures: configs, precision of the blocks, batch isolation."""

import json

import pytest
import torch
from safetensors.torch import load_file

from genesis3d.errors import ConfigError
from genesis3d.models.trellis2.config import FlowConfig, SparseUnetDecoderConfig
from genesis3d.nn.sparse import SparseTensor
from genesis3d.testing.trellis2_cases import FLOW_SPARSE, TEXTURE_DECODER, build
from genesis3d.weights.loading import load_into


def _case(fixtures_dir, name, official):
    folder = fixtures_dir / "trellis2" / name
    manifest = json.loads((folder / "manifest.json").read_text())
    module = build(official, manifest["config"]).eval()
    load_into(module, load_file(str(folder / "weights.safetensors")))
    inputs = load_file(str(folder / "inputs.safetensors"))
    outputs = load_file(str(folder / "outputs.safetensors"))
    return module, inputs, outputs


def test_configs_refuse_unknown_keys_and_unsupported_values():
    args = dict(resolution=16, in_channels=8, model_channels=64, cond_channels=48,
                out_channels=8, num_blocks=1, num_heads=2, pe_mode="rope", share_mod=True)  # fmt: skip
    assert FlowConfig.from_args(args).head_dim == 32
    with pytest.raises(ConfigError, match="unknown keys \\['use_fp8'\\]"):
        FlowConfig.from_args({**args, "use_fp8": True})
    with pytest.raises(ConfigError, match="pe_mode must be 'rope'"):
        FlowConfig.from_args({**args, "pe_mode": "ape"})
    with pytest.raises(ConfigError, match="block type must be one of"):
        SparseUnetDecoderConfig.from_args(
            dict(
                out_channels=6,
                model_channels=[8, 8],
                latent_channels=4,
                num_blocks=[1, 0],
                block_type=["SparseResBlock3d"] * 2,
                up_block_type=["SparseResBlockC2S3d"],
                block_args=[{}, {}],
            )  # fmt: skip
        )


@torch.inference_mode()
def test_sparse_flow_with_bfloat16_blocks_stays_close_and_returns_float32(fixtures_dir):
    model, i, o = _case(fixtures_dir, "slat_flow_shape", FLOW_SPARSE)
    model.blocks.to(torch.bfloat16)
    out = model(SparseTensor(i["x.coords"], i["x.feats"]), i["t"], i["cond"])
    assert out.feats.dtype == torch.float32
    error = (out.feats - o["out.feats"]).abs().max() / o["out.feats"].abs().max()
    assert 0 < error < 0.02


@torch.inference_mode()
def test_sparse_flow_items_do_not_see_each_other(fixtures_dir):
    model, i, o = _case(fixtures_dir, "slat_flow_shape", FLOW_SPARSE)
    rows = i["x.coords"][:, 0] == 1
    coords = i["x.coords"][rows].clone()
    coords[:, 0] = 0
    alone = model(SparseTensor(coords, i["x.feats"][rows]), i["t"][1:], i["cond"][1:])
    torch.testing.assert_close(alone.feats, o["out.feats"][rows], atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_texture_decoder_with_float16_stages_follows_the_guides(fixtures_dir):
    model, i, o = _case(fixtures_dir, "texture_decoder", TEXTURE_DECODER)
    model.blocks.to(torch.float16)
    guides = [i[f"guide_subs.{k}.feats"] for k in range(4)]
    out, _ = model(SparseTensor(i["x.coords"], i["x.feats"]), guides)
    assert torch.equal(out.coords, o["out.coords"]) and out.feats.dtype == torch.float32
    error = (out.feats - o["out.feats"]).abs().max() / o["out.feats"].abs().max()
    assert 0 < error < 0.02
