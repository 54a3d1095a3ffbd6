"""The tiny BiRefNet end to end: shapes, batching, backends, input checks."""

from __future__ import annotations

import pytest
import torch

from genesis3d.errors import InputError
from genesis3d.models.birefnet.decoder import image_to_patches
from genesis3d.nn.attention import attention_backend


def _image(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_forward_shape_and_finite_on_a_non_square_batch(tiny_model):
    images = _image(0, 2, 3, 32, 64)
    with torch.no_grad():
        logits = tiny_model(images)
        alone = tiny_model(images[1:])
    assert logits.shape == (2, 1, 32, 64) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all() and logits.std() > 0
    # Eval mode: each picture's logits do not depend on the rest of the batch.
    torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=1e-5)


def test_sdpa_and_reference_attention_agree(tiny_model):
    image = _image(1, 1, 3, 32, 32)
    with torch.no_grad():
        fused = tiny_model(image)
        with attention_backend("reference"):
            explicit = tiny_model(image)
    torch.testing.assert_close(fused, explicit, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(1, 3, 48, 64), (1, 3, 64, 40), (1, 4, 64, 64), (3, 64, 64)])
def test_rejects_sizes_that_are_not_multiples_of_32_and_bad_layouts(tiny_model, shape):
    with pytest.raises(InputError, match="BiRefNet"):
        tiny_model(torch.zeros(shape))


def test_image_to_patches_stacks_contiguous_tiles():
    image = torch.arange(2 * 2 * 4 * 6, dtype=torch.float32).reshape(2, 2, 4, 6)
    tiles = image_to_patches(image, (2, 3))  # a 2 x 2 grid of 2 x 3 tiles
    assert tiles.shape == (2, 2 * 4, 2, 3)
    for channel in range(2):
        for row in range(2):
            for column in range(2):
                expected = image[:, channel, 2 * row : 2 * row + 2, 3 * column : 3 * column + 3]
                assert torch.equal(tiles[:, channel * 4 + row * 2 + column], expected)
