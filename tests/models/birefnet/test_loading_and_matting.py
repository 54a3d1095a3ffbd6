"""Strict checkpoint loading and the alpha prediction of the tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from genesis3d.errors import ConfigError, InputError, WeightsError
from genesis3d.models.birefnet import BiRefNet, load_birefnet, predict_alpha
from genesis3d.models.birefnet.matting import IMAGENET_MEAN, IMAGENET_STD


def _save(state: dict[str, torch.Tensor], path) -> None:
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))


@pytest.fixture(scope="module")
def checkpoint(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("birefnet") / "birefnet.safetensors"
    _save(tiny_model.state_dict(), path)
    return path


def test_round_trip_gives_the_same_logits(tiny_model, tiny_config, checkpoint):
    loaded = load_birefnet(checkpoint, config=tiny_config)
    assert not loaded.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())
    index = loaded.bb.layers[0].blocks[1].attn.relative_position_index
    assert index.dtype == torch.int64
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), tiny_model(image), atol=0, rtol=0)


def test_load_in_bfloat16_keeps_integer_buffers(tiny_config, checkpoint):
    loaded = load_birefnet(checkpoint, config=tiny_config, dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert loaded.bb.layers[0].blocks[0].attn.relative_position_index.dtype == torch.int64
    assert loaded.decoder.gdt_convs_4[1].num_batches_tracked.dtype == torch.int64


def test_missing_and_extra_keys_are_named_in_one_error(tiny_model, tiny_config, tmp_path):
    state = dict(tiny_model.state_dict())
    del state["decoder.gdt_convs_pred_2.0.bias"]
    state["decoder.refiner.weight"] = torch.zeros(2)
    path = tmp_path / "broken.safetensors"
    _save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_birefnet(path, config=tiny_config)
    message = str(caught.value)
    assert "1 missing: decoder.gdt_convs_pred_2.0.bias" in message
    assert "1 unexpected: decoder.refiner.weight" in message


def test_wrong_config_names_the_shape_mismatches(tiny_config, checkpoint):
    wider = dataclasses.replace(tiny_config, embed_dim=16)
    with pytest.raises(WeightsError, match="with another shape: bb.layers"):
        load_birefnet(checkpoint, config=wider)


def test_bad_path_and_dtype_are_refused(tmp_path, checkpoint):
    with pytest.raises(WeightsError, match="not found"):
        load_birefnet(tmp_path / "absent.safetensors")
    with pytest.raises(ConfigError, match="floating-point"):
        load_birefnet(checkpoint, dtype=torch.int8)


def test_predict_alpha_on_a_non_square_picture(tiny_model):
    rgb = np.random.default_rng(0).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    alpha = predict_alpha(tiny_model, rgb, size=64)
    assert alpha.shape == (40, 56) and alpha.dtype == np.uint8
    # The same steps written out: resize, normalise, forward, sigmoid, resize back, truncate.
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    image = F.interpolate(image, size=(64, 64), mode="bilinear", align_corners=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        soft = torch.sigmoid(tiny_model((image - mean) / std))
    soft = F.interpolate(soft, size=(40, 56), mode="bilinear", align_corners=True)[0, 0]
    expected = np.floor(255 * soft.clamp(0, 1).numpy()).astype(np.uint8)
    assert np.abs(alpha.astype(int) - expected.astype(int)).max() <= 1
    assert (alpha == expected).mean() > 0.99


@pytest.mark.parametrize(
    "rgb",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((0, 8, 3), dtype=np.uint8),
    ],
)
def test_predict_alpha_refuses_bad_pictures(tiny_model, rgb):
    with pytest.raises(InputError):
        predict_alpha(tiny_model, rgb, size=64)


def test_predict_alpha_refuses_bad_sizes_and_training_mode(tiny_model, tiny_config):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match="multiple of 32"):
        predict_alpha(tiny_model, rgb, size=48)
    with pytest.raises(ConfigError, match="training mode"):
        predict_alpha(BiRefNet(tiny_config), rgb, size=32)
