"""The shared DINOv3 ViT: the final norm is optional, token layout, input checks."""

import pytest
import torch

from genesis3d.nn.dinov3 import DINOv3Config, DINOv3ViT, build_dinov3
from genesis3d.weights.loading import TensorInfo

CONFIG = DINOv3Config(hidden_size=128, num_layers=2, intermediate_size=256, gated_mlp=False)


def _model() -> DINOv3ViT:
    torch.manual_seed(0)
    model = DINOv3ViT(CONFIG).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.05)
    return model


@pytest.mark.parametrize(("size", "tokens"), [(512, 1029), (64, 21)])
def test_hidden_states_keep_every_token_and_forward_adds_the_final_norm(size, tokens):
    model = _model()
    pixels = torch.randn(2, 3, size, size)
    with torch.no_grad():
        hidden = model.hidden_states(pixels)
        assert hidden.shape == (2, tokens, 128)  # class token, 4 registers, the patches
        torch.testing.assert_close(model(pixels), model.norm(hidden))
        # Per picture: the second picture alone gives its row of the batch.
        torch.testing.assert_close(
            model.hidden_states(pixels[1:]), hidden[1:], atol=1e-5, rtol=1e-5
        )


def test_pixels_must_tile_into_patches():
    with pytest.raises(ValueError, match="multiples of 16"):
        _model().hidden_states(torch.zeros(1, 3, 500, 512))


def test_sizes_are_read_off_the_header():
    state = DINOv3ViT(CONFIG).state_dict()
    header = {key: TensorInfo("F32", tuple(value.shape), (0, 0)) for key, value in state.items()}
    built = build_dinov3(header, "dinov3.safetensors")
    assert built.config.hidden_size == 128 and built.config.num_layers == 2
    assert not built.config.gated_mlp and built.config.intermediate_size == 256
