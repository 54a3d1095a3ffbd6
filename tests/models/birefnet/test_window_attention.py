"""Swin windows, the shifted-window mask, relative positions and attention with a bias."""

from __future__ import annotations

import itertools

import pytest
import torch

from genesis3d.models.birefnet import biased_attention, reference_biased_attention
from genesis3d.models.birefnet.window_attention import (
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from genesis3d.nn.attention import attention_backend


def test_window_partition_and_reverse_round_trip():
    x = torch.randn(2, 8, 12, 3, generator=torch.Generator().manual_seed(0))
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 4, 4, 3)
    # Row-major windows within each picture, pictures one after the other.
    torch.testing.assert_close(windows[1], x[0, 0:4, 4:8])
    torch.testing.assert_close(windows[3], x[0, 4:8, 0:4])
    torch.testing.assert_close(windows[6], x[1, 0:4, 0:4])
    torch.testing.assert_close(window_reverse(windows, 4, 8, 12), x, atol=0, rtol=0)


def test_shifted_window_mask_on_a_4x4_grid():
    mask = shifted_window_mask(4, 4, window=2, shift=1)
    assert mask.shape == (4, 4, 4) and mask.dtype == torch.float32
    assert torch.all(mask[0] == 0)  # top-left window: nothing wrapped round
    # Bottom-right window: its four tokens come from four different regions.
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))
    # Top-right window: columns split (the right column wrapped round), rows do not.
    allowed = torch.tensor(
        [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(mask[1] == 0, allowed)
    assert torch.all(torch.isneginf(mask[mask != 0]))


@pytest.mark.parametrize(
    ("height", "width", "window", "shift"), [(6, 9, 3, 1), (8, 8, 4, 2), (12, 8, 4, 2)]
)
def test_shifted_window_mask_separates_exactly_the_wrapped_tokens(height, width, window, shift):
    """Brute force: after rolling by -shift, two tokens of a window may attend to each other
    if and only if both or neither wrapped round, along each axis."""
    mask = shifted_window_mask(height, width, window, shift)
    windows_w = width // window
    for index in range(mask.shape[0]):
        top, left = (index // windows_w) * window, (index % windows_w) * window
        cells = [(top + r, left + c) for r, c in itertools.product(range(window), repeat=2)]
        for p, (row_p, col_p) in enumerate(cells):
            for q, (row_q, col_q) in enumerate(cells):
                same = (row_p >= height - shift) == (row_q >= height - shift) and (
                    col_p >= width - shift
                ) == (col_q >= width - shift)
                assert (mask[index, p, q] == 0).item() == same


def test_relative_position_index_by_brute_force():
    window = 3
    index = relative_position_index(window)
    assert index.shape == (9, 9) and index.dtype == torch.int64
    for p, q in itertools.product(range(9), repeat=2):
        (y1, x1), (y2, x2) = divmod(p, window), divmod(q, window)
        assert index[p, q] == (y1 - y2 + window - 1) * (2 * window - 1) + (x1 - x2 + window - 1)
    assert relative_position_index(12).max() == 23 * 23 - 1


def _qkv_bias(seed: int, masked: bool):
    generator = torch.Generator().manual_seed(seed)
    query, key, value = (torch.randn(6, 3, 16, 8, generator=generator) for _ in range(3))
    bias = torch.randn(1, 3, 16, 16, generator=generator)
    if masked:
        mask = shifted_window_mask(8, 8, 4, 2).unsqueeze(1)  # (4, 1, 16, 16)
        bias = (bias + mask).repeat(6 // 4 + 1, 1, 1, 1)[:6]
    return query, key, value, bias


@pytest.mark.parametrize("masked", [False, True])
def test_biased_attention_sdpa_matches_the_explicit_softmax(masked):
    query, key, value, bias = _qkv_bias(0, masked)
    fused = biased_attention(query, key, value, bias)
    explicit = reference_biased_attention(query, key, value, bias)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    # A check that does not trust either implementation.
    weights = torch.softmax(
        query.double() @ key.double().transpose(-1, -2) / 8**0.5 + bias.double(), -1
    )
    torch.testing.assert_close(fused.double(), weights @ value.double(), atol=1e-5, rtol=1e-5)


def test_reference_backend_is_honoured():
    query, key, value, bias = _qkv_bias(1, True)
    with attention_backend("reference"):
        inside = biased_attention(query.bfloat16(), key.bfloat16(), value.bfloat16(), bias)
    expected = reference_biased_attention(query.bfloat16(), key.bfloat16(), value.bfloat16(), bias)
    assert inside.dtype == torch.bfloat16
    assert torch.equal(inside, expected)
