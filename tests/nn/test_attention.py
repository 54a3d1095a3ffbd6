import pytest
import torch

from genesis3d.errors import ConfigError
from genesis3d.nn.attention import (
    attention,
    attention_backend,
    current_backend,
    reference_attention,
)


def _qkv(seed: int, lq: int = 37, lk: int = 53, dim: int = 16, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    shape = (2, 3)
    query = torch.randn(*shape, lq, dim, generator=generator).to(dtype)
    key = torch.randn(*shape, lk, dim, generator=generator).to(dtype)
    value = torch.randn(*shape, lk, dim + 4, generator=generator).to(dtype)
    return query, key, value


@pytest.mark.parametrize("scale", [None, 0.3])
def test_fused_matches_reference(scale):
    query, key, value = _qkv(0)
    fused = attention(query, key, value, scale=scale)
    reference = reference_attention(query, key, value, scale=scale, query_block=8)
    assert fused.shape == (2, 3, 37, 20)
    torch.testing.assert_close(fused, reference, atol=2e-6, rtol=1e-5)


def test_reference_blocks_do_not_change_the_result():
    query, key, value = _qkv(1)
    whole = reference_attention(query, key, value, query_block=10_000)
    blocked = reference_attention(query, key, value, query_block=5)
    torch.testing.assert_close(whole, blocked, atol=1e-6, rtol=1e-6)


def test_reference_keeps_the_dtype_and_accumulates_in_float32():
    query, key, value = _qkv(2, dtype=torch.bfloat16)
    out = reference_attention(query, key, value)
    assert out.dtype == torch.bfloat16
    exact = reference_attention(query.float(), key.float(), value.float())
    torch.testing.assert_close(out.float(), exact, atol=2e-2, rtol=2e-2)


def test_backend_is_scoped():
    query, key, value = _qkv(3)
    assert current_backend() == "sdpa"
    with attention_backend("reference"):
        assert current_backend() == "reference"
        out = attention(query, key, value)
    assert current_backend() == "sdpa"
    torch.testing.assert_close(out, reference_attention(query, key, value), atol=0, rtol=0)


def test_unknown_backend_is_refused():
    with (
        pytest.raises(ConfigError, match="attention backend must be one of"),
        attention_backend("flash"),
    ):
        pass


@pytest.mark.parametrize("rows", ["full", "broadcast"])
def test_additive_bias_fused_and_reference_agree_blockwise(rows):
    from genesis3d.nn.attention import attention, attention_backend, reference_attention

    generator = torch.Generator().manual_seed(11)
    query, key, value = (torch.randn(2, 3, 37, 8, generator=generator) for _ in range(3))
    shape = (3, 37, 37) if rows == "full" else (2, 1, 1, 37)
    bias = torch.randn(shape, generator=generator)
    bias[..., 0, 5] = float("-inf")  # a masked pair
    fused = attention(query, key, value, bias=bias)
    blocked = reference_attention(query, key, value, bias=bias, query_block=8)
    torch.testing.assert_close(fused, blocked, atol=1e-5, rtol=1e-5)
    with attention_backend("reference"):
        torch.testing.assert_close(attention(query, key, value, bias=bias), blocked)
    # The bias matters: without it the answer differs.
    assert (attention(query, key, value) - fused).abs().max() > 1e-2
