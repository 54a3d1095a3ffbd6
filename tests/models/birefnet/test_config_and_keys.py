"""The default config builds exactly the official checkpoint's keys; configs validate."""

from __future__ import annotations

import json

import pytest
import torch

from genesis3d.errors import ConfigError
from genesis3d.models.birefnet import BiRefNet, BiRefNetConfig


def test_default_config_matches_the_official_key_inventory(fixtures_dir):
    inventory = json.loads((fixtures_dir / "triposplat" / "keys" / "birefnet.json").read_text())
    with torch.device("meta"):
        model = BiRefNet(BiRefNetConfig())
    state = model.state_dict()
    assert sorted(set(inventory) - set(state)) == []
    assert sorted(set(state) - set(inventory)) == []
    wrong = [
        (key, list(state[key].shape), str(state[key].dtype), shape, dtype)
        for key, (shape, dtype) in inventory.items()
        if list(state[key].shape) != shape or str(state[key].dtype).removeprefix("torch.") != dtype
    ]
    assert wrong == []
    assert len(state) == 754
    index = state["bb.layers.0.blocks.0.attn.relative_position_index"]
    assert index.shape == (144, 144) and index.dtype == torch.int64


def test_config_derived_channels():
    config = BiRefNetConfig()
    assert config.stage_channels == (192, 384, 768, 1536)
    assert config.feature_channels == (384, 768, 1536, 3072)
    assert config.context_channels == 384 + 768 + 1536
    assert BiRefNetConfig(context_levels=2).context_channels == 768 + 1536
    assert BiRefNetConfig(context_levels=0).context_channels == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"depths": (2, 2, 2)}, "4 entries"),
        ({"num_heads": (5, 12, 24, 48)}, "not divisible by 5 heads"),
        ({"window_size": 0}, "window_size"),
        ({"aspp_kernel_sizes": (1, 4)}, "odd"),
        ({"context_levels": 4}, "context_levels"),
        ({"decoder_channels": 0}, "decoder_channels"),
    ],
)
def test_config_rejects_invalid_values(values, message):
    with pytest.raises(ConfigError, match=message):
        BiRefNetConfig(**values)


def test_from_dict_names_unknown_keys():
    assert BiRefNetConfig.from_dict({"window_size": 7}).window_size == 7
    with pytest.raises(ConfigError, match=r"unknown keys \['bb', 'task'\]"):
        BiRefNetConfig.from_dict({"bb": "swin_v1_l", "task": "General", "window_size": 12})


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        BiRefNetConfig().window_size = 7  # type: ignore[misc]


@pytest.mark.parametrize(
    "config",
    [
        BiRefNetConfig(),
        BiRefNetConfig.tiny(),
        BiRefNetConfig(
            embed_dim=16, depths=(1, 2, 3, 1), num_heads=(1, 2, 4, 8), window_size=7,
            mlp_ratio=2.0, aspp_kernel_sizes=(1, 3), context_levels=1,
        ),
    ],
)  # fmt: skip
def test_config_is_read_off_the_tensor_shapes(config):
    from genesis3d.models.birefnet.checkpoint import config_from_header

    with torch.device("meta"):
        state = BiRefNet(config).state_dict()
    assert config_from_header(state) == config


def test_a_file_of_another_network_is_named():
    from genesis3d.errors import WeightsError
    from genesis3d.models.birefnet.checkpoint import config_from_header

    with pytest.raises(WeightsError, match="lacks bb.patch_embed.proj.weight"):
        config_from_header({"encoder.conv_in.weight": torch.zeros(1)}, "x.safetensors")
