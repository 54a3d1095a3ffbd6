"""The CPU half-precision policy of genesis3d.nn.conv.Conv2d against plain nn.Conv2d."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genesis3d.nn.conv import Conv2d, cpu_computes_natively

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
