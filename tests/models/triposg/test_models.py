"""TripoSG configs and modules on tiny seeded models."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genesis3d.errors import ConfigError
from genesis3d.models.triposg.config import (
    RectifiedFlowConfig,
    TripoSGDiTConfig,
    TripoSGVAEConfig,
)
from genesis3d.models.triposg.sampling import rectified_flow_sigmas, rectified_flow_timesteps
from genesis3d.models.triposg.transformer import TripoSGDiTModel
from genesis3d.models.triposg.vae import TripoSGVAEModel, fourier_embedding, sample_query_points
from genesis3d.nn.attention import attention_backend

TINY_DIT = TripoSGDiTConfig(num_attention_heads=2, width=32, in_channels=4, num_layers=3, cross_attention_dim=8)  # fmt: skip
TINY_VAE = TripoSGVAEConfig(latent_channels=4, num_attention_heads=2, width_encoder=16, width_decoder=16, num_layers_encoder=1, num_layers_decoder=2)  # fmt: skip


def _seeded(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return module.eval()


def test_configs_read_the_official_files_and_refuse_unknown_keys(fixtures_dir):
    configs = json.loads((fixtures_dir / "triposg" / "keys" / "configs.json").read_text())
    assert TripoSGDiTConfig.from_config(configs["transformer"]) == TripoSGDiTConfig()
    vae = dict(configs["vae"])  # its "_note" is bookkeeping like "_class_name"
    assert (
        TripoSGVAEConfig.from_config(vae | {"_class_name": "Tripo2VAEModel"}) == TripoSGVAEConfig()
    )
    assert RectifiedFlowConfig.from_config(configs["scheduler"]) == RectifiedFlowConfig()
    with pytest.raises(ConfigError, match=r"unknown keys \['patch_size'\]"):
        TripoSGDiTConfig.from_config({"width": 64, "patch_size": 2})
    with pytest.raises(ConfigError, match="scribble"):
        TripoSGDiTConfig(use_cross_attention_2=True, cross_attention_2_dim=768)
    with pytest.raises(ConfigError, match="not divisible"):
        TripoSGVAEConfig(width_decoder=100, num_attention_heads=8)
    with pytest.raises(ConfigError, match="embedding_type"):
        TripoSGVAEConfig(embedding_type="learned")


def test_schedule_of_the_official_scheduler():
    np.testing.assert_array_equal(rectified_flow_sigmas(5), np.float32([1, 0.8, 0.6, 0.4, 0.2, 0]))
    times = rectified_flow_timesteps(50)
    assert times.dtype == np.float32 and times[0] == 1000 and times[-1] == 20 and len(times) == 50


def test_dit_reference_attention_matches_sdpa():
    model = _seeded(TripoSGDiTModel(TINY_DIT))
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 5, 4, generator=generator)
    context = torch.randn(2, 3, 8, generator=generator)
    t = torch.tensor([1000.0, 20.0])
    with torch.no_grad():
        fast = model(latents, t, context)
        with attention_backend("reference"):
            slow = model(latents, t, context)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    # The time token is dropped; the output keeps the latent shape.
    assert fast.shape == latents.shape


def test_decode_is_independent_of_chunking_and_reuses_the_trunk():
    vae = _seeded(TripoSGVAEModel(TINY_VAE))
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(1, 6, 4, generator=generator)
    points = torch.rand(1, 50, 3, generator=generator) * 2 - 1
    calls = []
    vae.decoder.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        whole = vae.decode(latents, points, chunk_size=50)
        field = vae.field(latents)
        parts = torch.cat([field(points[:, :7]), field(points[:, 7:])], dim=1)
    torch.testing.assert_close(whole, parts, atol=1e-6, rtol=0)
    assert len(calls) == 2  # one trunk pass per field, however many query batches


def test_fourier_embedding_layout():
    p = torch.tensor([[0.5, -0.25, 1.0]])
    e = fourier_embedding(p, 2)
    angles = torch.tensor([0.5, 1.0, -0.25, -0.5, 1.0, 2.0])  # coordinate-major
    torch.testing.assert_close(e, torch.cat([p[0], angles.sin(), angles.cos()])[None])


def test_query_subsample_uses_numpy_preselection(fixtures_dir):
    inputs = load_file(str(fixtures_dir / "triposg" / "vae_encode" / "inputs.safetensors"))
    queries, chosen = sample_query_points(inputs["x"], 24, seed=7)
    assert torch.equal(chosen, inputs["rng_indices"])
    torch.testing.assert_close(queries, inputs["sampled_points"], atol=0, rtol=0)
