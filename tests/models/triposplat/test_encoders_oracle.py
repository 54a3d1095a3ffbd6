"""Numeric oracles for the TripoSplat image encoders (spec 2.2, 2.3).

genesis3d's DINOv3 ViT and FLUX.2 VAE encoder are compared with the reference library
implementations, Hugging Face transformers ``DINOv3ViTModel`` and diffusers
``AutoencoderKLFlux2``, at tiny sizes. The reference model is built from a config with seeded
random weights (every parameter redrawn so that no norm, scale or bias is trivial), written
with the library's own ``save_pretrained`` (so in the naming of the released files), and the
file is loaded by genesis3d's strict component loader from a layout folder. Both run in
float32 on the CPU.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.models.triposplat.components import COMPONENTS, load_component
from genesis3d.models.triposplat.encoders import (
    PREFIX_TOKENS,
    Flux2VAEEncoder,
    build_flux2_vae_encoder,
    encode_feature1,
    encode_feature2,
    patchify,
)
from genesis3d.nn.dinov3 import IMAGENET_MEAN, IMAGENET_STD, DINOv3Config, DINOv3ViT, build_dinov3
from genesis3d.weights.loading import load_into

ATOL = 2e-5  # float32; the measured differences are a few 1e-6


def _randomise(module: nn.Module, seed: int) -> None:
    """Redraw every parameter: weights ~ N(0, 1/fan_in), norm and LayerScale weights around
    1 (not 1), biases and tokens ~ N(0, 0.1-0.5)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            leaf = name.rsplit(".", 1)[-1]
            if param.ndim >= 2 and "token" not in name:
                param.copy_(noise / math.sqrt(param[0].numel()))
            elif leaf == "lambda1":
                param.copy_(0.5 + 0.2 * noise)
            elif leaf == "weight":  # LayerNorm / GroupNorm scales
                param.copy_(1 + 0.2 * noise)
            elif "token" in name:
                param.copy_(0.5 * noise)
            else:
                param.copy_(0.1 * noise)


def _install(saved: Path, layout: Path, component: str) -> Path:
    """Copy the library's saved weights file to the component's place in a layout folder."""
    target = layout / COMPONENTS[component].file
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(saved, target)
    return layout


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


# --------------------------------------------------------------------------- DINOv3


def _hf_dinov3(
    *, hidden: int, heads: int, gated: bool, seed: int = 0, registers: int = 4
) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.DINOv3ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        patch_size=16,
        num_register_tokens=registers,
        use_gated_mlp=gated,
        hidden_act="silu" if gated else "gelu",  # ViT-H/16+: SwiGLU; ViT-L/16: GELU MLP
        image_size=64,
        layer_norm_eps=1e-5,
        rope_theta=100.0,
        # Training-time RoPE augmentation: must be inactive in eval mode.
        pos_embed_shift=0.1,
        pos_embed_jitter=1.5,
        pos_embed_rescale=2.0,
    )
    model = transformers.DINOv3ViTModel(config)
    _randomise(model, seed)
    return model.eval()


def _hf_state_dict(model: nn.Module, folder: Path) -> Path:
    """Save with transformers and return the weights file (released-file key names)."""
    model.save_pretrained(folder)
    return folder / "model.safetensors"


@pytest.fixture(scope="module")
def dinov3_pair(tmp_path_factory):
    """(transformers model, genesis3d model loaded from the saved file) per MLP kind."""
    pairs = {}
    for gated in (True, False):
        root = tmp_path_factory.mktemp(f"dinov3_{'gated' if gated else 'gelu'}")
        reference = _hf_dinov3(hidden=128, heads=2, gated=gated, seed=1 + gated)
        saved = _hf_state_dict(reference, root / "hf")
        layout = _install(saved, root / "layout", "dinov3")
        ours = load_component(layout, "dinov3", device=torch.device("cpu"), dtype=torch.float32)
        pairs[gated] = (reference, ours)
    return pairs


@pytest.mark.parametrize("size", [(64, 64), (48, 64), (80, 32)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
def test_dinov3_last_hidden_state_matches_transformers(dinov3_pair, gated, size):
    reference, ours = dinov3_pair[gated]
    assert ours.config.gated_mlp is gated
    assert not reference.training and not ours.training
    pixels = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(pixel_values=pixels).last_hidden_state
        got = ours(pixels)
    rows, cols = size[0] // 16, size[1] // 16
    assert got.shape == (2, 1 + 4 + rows * cols, 128)
    assert _max_diff(got, expected) < ATOL


@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
def test_feature1_matches_transformers_plus_layer_norm(dinov3_pair, gated):
    """feature1 = F.layer_norm(last_hidden_state) of the ImageNet-normalised picture (spec 2.2),
    as training computed it through transformers."""
    reference, ours = dinov3_pair[gated]
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        hidden = reference(pixel_values=(image - mean) / std).last_hidden_state
        expected = F.layer_norm(hidden, (hidden.shape[-1],), eps=1e-5)
        got = encode_feature1(ours, image)
    assert got.dtype == torch.float32
    assert _max_diff(got, expected) < ATOL


def test_dinov3_build_from_a_plain_state_dict_header(tmp_path):
    """build_dinov3 reads only ``.shape`` off the header: a key -> tensor mapping works."""
    from safetensors.torch import load_file

    reference = _hf_dinov3(hidden=128, heads=2, gated=True, seed=5, registers=2)
    state = load_file(_hf_state_dict(reference, tmp_path / "hf"))
    ours = build_dinov3(state, "state dict").eval()
    assert ours.config == DINOv3Config(
        hidden_size=128, num_layers=2, intermediate_size=256, num_register_tokens=2
    )
    load_into(ours, {k: v for k, v in state.items() if k != "embeddings.mask_token"})
    pixels = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        diff = _max_diff(ours(pixels), reference(pixel_values=pixels).last_hidden_state)
    assert diff < ATOL


@pytest.mark.parametrize("gated", [True, False], ids=["swiglu", "gelu"])
def test_dinov3_other_head_dim_matches_transformers(tmp_path, gated):
    """hidden 64 with 4 heads (head_dim 16, RoPE quarter 4). The head count is not in the
    file (every released DINOv3 but the 7B uses head_dim 64), so the config is given."""
    from safetensors.torch import load_file

    reference = _hf_dinov3(hidden=64, heads=4, gated=gated, seed=7)
    state = load_file(_hf_state_dict(reference, tmp_path / "hf"))
    ours = DINOv3ViT(
        DINOv3Config(
            hidden_size=64, num_layers=2, head_dim=16, intermediate_size=128, gated_mlp=gated
        )
    ).eval()
    load_into(ours, {k: v for k, v in state.items() if k != "embeddings.mask_token"})
    pixels = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        diff = _max_diff(ours(pixels), reference(pixel_values=pixels).last_hidden_state)
    assert diff < ATOL


def test_dinov3_rope_matches_transformers():
    """cos/sin of the patch grid, non-square: centres (i + 0.5) / n in [-1, 1], (row, col)."""
    modeling = pytest.importorskip("transformers.models.dinov3_vit.modeling_dinov3_vit")
    reference = _hf_dinov3(hidden=128, heads=2, gated=True)
    ours = DINOv3ViT(DINOv3Config(hidden_size=128, num_layers=0, intermediate_size=256))
    pixels = torch.zeros(1, 3, 48, 80)
    cos, sin = reference.rope_embeddings(pixels)
    got_cos, got_sin = ours.rope(3, 5, torch.device("cpu"))
    assert _max_diff(got_cos, cos) < 1e-6 and _max_diff(got_sin, sin) < 1e-6
    coords = modeling.get_patches_center_coordinates(3, 5, torch.float32, torch.device("cpu"))
    assert coords[0].tolist() == pytest.approx([-2 / 3, -4 / 5])


# --------------------------------------------------------------------------- FLUX.2 VAE


def _diffusers_vae(
    *, channels: tuple[int, ...], groups: int, latent: int = 4, seed: int = 0
) -> nn.Module:
    diffusers = pytest.importorskip("diffusers")
    vae = diffusers.AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=2,
        latent_channels=latent,
        norm_num_groups=groups,
        sample_size=64,
        # Upstream TripoSplat normalises with eps 1e-5; the diffusers default is 1e-4 (spec 2.3).
        batch_norm_eps=1e-5,
    )
    _randomise(vae, seed)
    generator = torch.Generator().manual_seed(seed + 100)
    bn = vae.bn
    bn.running_mean.copy_(0.5 * torch.randn(bn.running_mean.shape, generator=generator))
    bn.running_var.copy_(0.25 + 2 * torch.rand(bn.running_var.shape, generator=generator))
    bn.num_batches_tracked.fill_(7)
    return vae.eval()


def _diffusers_file(vae: nn.Module, folder: Path) -> Path:
    vae.save_pretrained(folder)
    return folder / "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def vae_pair(tmp_path_factory):
    """(diffusers AutoencoderKLFlux2, genesis3d encoder loaded from its saved file)."""
    root = tmp_path_factory.mktemp("flux2_vae")
    reference = _diffusers_vae(channels=(32, 64, 64), groups=32, seed=11)
    layout = _install(_diffusers_file(reference, root / "hf"), root / "layout", "flux2_vae")
    ours = load_component(layout, "flux2_vae", device=torch.device("cpu"), dtype=torch.float32)
    return reference, ours


@pytest.mark.parametrize("size", [(64, 64), (32, 96)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_flux2_vae_moments_match_diffusers(vae_pair, size):
    reference, ours = vae_pair
    x = 2 * torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(12)) - 1
    with torch.no_grad():
        posterior = reference.encode(x).latent_dist
        mean, logvar = ours.moments(x).chunk(2, dim=1)
    # diffusers clamps the log-variance to [-30, 20], upstream does not: stay inside.
    assert logvar.min() > -30 and logvar.max() < 20
    assert mean.shape == (2, 4, size[0] // 4, size[1] // 4)
    assert _max_diff(mean, posterior.mean) < ATOL
    assert _max_diff(logvar, posterior.logvar) < ATOL


def test_feature2_matches_diffusers_sample_patchify_and_bn(vae_pair):
    """feature2 by hand from diffusers: posterior sample from the same seeded generator,
    Flux2Pipeline._patchify_latents, BatchNorm statistics as the pipeline applies them,
    tokens, 5 zero tokens in front (spec 2.3)."""
    pipeline = pytest.importorskip("diffusers.pipelines.flux2.pipeline_flux2")
    reference, ours = vae_pair
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        posterior = reference.encode(2 * image - 1).latent_dist
        z = posterior.sample(generator=torch.Generator().manual_seed(14))
        z = pipeline.Flux2Pipeline._patchify_latents(z)
        bn = reference.bn
        z = (z - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
            bn.running_var.view(1, -1, 1, 1) + reference.config.batch_norm_eps
        )
        tokens = z.flatten(2).transpose(1, 2)
        expected = torch.cat([tokens.new_zeros(1, PREFIX_TOKENS, tokens.shape[2]), tokens], 1)
        got = encode_feature2(ours, image, torch.Generator().manual_seed(14))
    # Three stages downsample by 4 (the released four by 8), then the 2x2 patchify.
    assert got.shape == (1, PREFIX_TOKENS + (64 // 8) ** 2, 16)
    assert got.dtype == torch.float32
    assert _max_diff(got, expected) < ATOL


def test_patchify_matches_diffusers_channel_order():
    pipeline = pytest.importorskip("diffusers.pipelines.flux2.pipeline_flux2")
    z = torch.randn(2, 3, 6, 8, generator=torch.Generator().manual_seed(15))
    got = patchify(z)
    assert torch.equal(got, pipeline.Flux2Pipeline._patchify_latents(z))
    c, dy, dx, row, col = 2, 1, 0, 2, 3
    assert got[1, 4 * c + 2 * dy + dx, row, col] == z[1, c, 2 * row + dy, 2 * col + dx]


def test_flux2_vae_other_group_count_matches_diffusers(tmp_path):
    """norm_num_groups is not in the file (GroupNorm weights are per channel): a config with
    8 groups needs it passed; the default stays 32 (the released VAE)."""
    from safetensors.torch import load_file

    reference = _diffusers_vae(channels=(16, 32), groups=8, seed=16)
    state = load_file(_diffusers_file(reference, tmp_path / "hf"))
    used = {k: v for k, v in state.items() if not k.startswith(("decoder.", "post_quant_conv."))}
    ours = build_flux2_vae_encoder(used, "state dict", norm_groups=8).eval()
    assert isinstance(ours, Flux2VAEEncoder)
    load_into(ours, used)
    x = 2 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(17)) - 1
    with torch.no_grad():
        posterior = reference.encode(x).latent_dist
        mean, logvar = ours.moments(x).chunk(2, dim=1)
    assert _max_diff(mean, posterior.mean) < ATOL
    assert _max_diff(logvar, posterior.logvar) < ATOL
