"""The CPU half-precision policy of genesis3d.nn.compute_dtype against the plain operations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genesis3d.nn.compute_dtype import Conv2d, Conv3d, Linear, cpu_computes_natively, matmul

SETTINGS = [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 3, "stride": 2},
    {"kernel_size": 1},
    {"kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2},
    {"kernel_size": 3, "padding": 1, "padding_mode": "reflect", "bias": False},
]


def _pair(settings: dict, dtype: torch.dtype) -> tuple[nn.Conv2d, Conv2d]:
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, **settings).to(dtype)
    ours = Conv2d(4, 6, **settings).to(dtype)
    ours.load_state_dict(plain.state_dict(), strict=True)
    return plain, ours


@pytest.mark.parametrize("settings", SETTINGS)
def test_float32_is_nn_conv2d_bit_for_bit(settings: dict) -> None:
    plain, ours = _pair(settings, torch.float32)
    x = torch.randn(2, 4, 11, 9, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ours(x), plain(x))
    assert list(ours.state_dict()) == list(plain.state_dict())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("settings", SETTINGS)
def test_half_precision_matches_plain_convolution(settings: dict, dtype: torch.dtype) -> None:
    plain, ours = _pair(settings, dtype)
    x = torch.randn(2, 4, 11, 9, generator=torch.Generator().manual_seed(1)).to(dtype)
    got = ours(x)
    assert got.dtype == dtype
    want = plain(x)
    # Both accumulate in float32 and round once; at most a rounding step apart.
    exact = plain.float()(x.float())
    step = torch.finfo(dtype).eps * exact.abs().clamp_min(1.0)
    assert ((got.float() - exact).abs() <= step).all()
    assert ((got.float() - want.float()).abs() <= 2 * step).all()
    if not cpu_computes_natively(dtype):
        # The float32 route is exactly float32 convolution rounded to the dtype.
        assert torch.equal(got, exact.to(dtype))


def test_float32_reports_native() -> None:
    assert cpu_computes_natively(torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_plain_linear(dtype: torch.dtype, bias: bool) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(24, 10, bias=bias).to(dtype)
    ours = Linear(24, 10, bias=bias).to(dtype)
    ours.load_state_dict(plain.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(plain.state_dict())
    x = torch.randn(3, 5, 24, generator=torch.Generator().manual_seed(1)).to(dtype)
    got = ours(x)
    assert got.dtype == dtype and got.shape == (3, 5, 10)
    exact = torch.nn.functional.linear(
        x.float(), plain.weight.float(), None if plain.bias is None else plain.bias.float()
    )
    step = torch.finfo(dtype).eps * exact.abs().clamp_min(1.0)
    assert ((got.float() - exact).abs() <= step).all()
    assert ((got.float() - plain(x).float()).abs() <= 2 * step).all()
    if not cpu_computes_natively(dtype):
        assert torch.equal(got, exact.to(dtype))
    x32 = x.float()
    assert torch.equal(ours.float()(x32), plain.float()(x32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_matmul_matches_torch_matmul(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(2)
    left = torch.randn(2, 4, 16, generator=generator).to(dtype)
    right = torch.randn(2, 16, 6, generator=generator).to(dtype)
    got = matmul(left, right)
    assert got.dtype == dtype
    exact = torch.matmul(left.float(), right.float())
    if dtype == torch.float32:
        assert torch.equal(got, exact)
        return
    step = torch.finfo(dtype).eps * exact.abs().clamp_min(1.0)
    assert ((got.float() - exact).abs() <= step).all()
    assert ((got.float() - torch.matmul(left, right).float()).abs() <= 2 * step).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_conv3d_matches_plain_convolution(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    plain = nn.Conv3d(3, 5, 3, padding=1).to(dtype)
    ours = Conv3d(3, 5, 3, padding=1).to(dtype)
    ours.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 3, 6, 5, 4, generator=torch.Generator().manual_seed(1)).to(dtype)
    got = ours(x)
    assert got.dtype == dtype
    exact = plain.float()(x.float())
    step = torch.finfo(dtype).eps * exact.abs().clamp_min(1.0)
    assert ((got.float() - exact).abs() <= step).all()
