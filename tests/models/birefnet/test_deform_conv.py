"""The vectorised deformable convolution against its loop twin and against F.conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genesis3d.errors import InputError
from genesis3d.models.birefnet import DeformableConv2d, deform_conv2d, reference_deform_conv2d


def _pair(value):
    return (value, value) if isinstance(value, int) else value


def _case(seed, *, channels, out, kernel, stride, padding, dilation, offset_groups=1, groups=1,
          size=(5, 7), offset_scale=3.0):  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    kh, kw = _pair(kernel)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    height, width = size
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x = torch.randn(2, channels, height, width, generator=generator)
    weight = torch.randn(out, channels // groups, kh, kw, generator=generator)
    bias = torch.randn(out, generator=generator)
    offset = torch.randn(2, 2 * offset_groups * kh * kw, out_h, out_w, generator=generator)
    mask = 2 * torch.rand(2, offset_groups * kh * kw, out_h, out_w, generator=generator)
    return x, offset * offset_scale, weight, bias, mask


CASES = [
    dict(channels=4, out=6, kernel=3, stride=1, padding=1, dilation=1),
    dict(channels=4, out=6, kernel=3, stride=2, padding=2, dilation=2),
    dict(channels=3, out=5, kernel=1, stride=1, padding=0, dilation=1),
    dict(channels=4, out=4, kernel=(2, 3), stride=(1, 2), padding=(0, 1), dilation=(2, 1),
         offset_groups=2, groups=2),
    # Offsets of up to ~30 pixels: most samples fall outside the picture or on its border.
    dict(channels=2, out=3, kernel=3, stride=1, padding=1, dilation=1, offset_scale=15.0),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_the_loop_twin(case):
    options = dict(CASES[case])
    stride, padding, dilation = options["stride"], options["padding"], options["dilation"]
    x, offset, weight, bias, mask = _case(case, **options)
    fast = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    slow = reference_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    assert fast.shape == slow.shape
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_integer_and_border_offsets_match_the_twin():
    # Exact integers and positions exactly at -1 and H: the zero-outside rule at its edges.
    x, _, weight, bias, mask = _case(
        7, channels=2, out=2, kernel=3, stride=1, padding=1, dilation=1
    )
    choices = torch.tensor([-9.0, -2.0, -1.0, 0.0, 0.5, 1.0, 6.0, 7.0, 8.0])
    generator = torch.Generator().manual_seed(8)
    offset = choices[torch.randint(len(choices), (2, 18, 5, 7), generator=generator)]
    fast = deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)
    slow = reference_deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", [0, 1, 3])
def test_zero_offset_and_unit_mask_is_a_regular_conv(case):
    options = dict(CASES[case])
    x, offset, weight, bias, _ = _case(case, **options)
    stride, padding, dilation = options["stride"], options["padding"], options["dilation"]
    expected = F.conv2d(x, weight, bias, stride, padding, dilation, groups=options.get("groups", 1))
    zero = torch.zeros_like(offset)
    ones = torch.ones(offset.shape[0], offset.shape[1] // 2, *offset.shape[2:])
    torch.testing.assert_close(
        deform_conv2d(x, zero, weight, bias, stride, padding, dilation, None), expected,
        atol=1e-5, rtol=1e-5,
    )  # fmt: skip
    torch.testing.assert_close(
        deform_conv2d(x, zero, weight, bias, stride, padding, dilation, ones), expected,
        atol=1e-5, rtol=1e-5,
    )  # fmt: skip


def test_half_precision_keeps_the_dtype_and_stays_close():
    x, offset, weight, bias, mask = _case(3, **CASES[0])
    half = deform_conv2d(x.bfloat16(), offset.bfloat16(), weight.bfloat16(), bias.bfloat16(), 1, 1, 1,
                         mask.bfloat16())  # fmt: skip
    full = deform_conv2d(
        x, offset.bfloat16().float(), weight, bias, 1, 1, 1, mask.bfloat16().float()
    )
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=0.15, rtol=0.05)


def test_bad_shapes_are_refused():
    x, offset, weight, bias, mask = _case(0, **CASES[0])
    with pytest.raises(InputError, match="offset must be"):
        deform_conv2d(x, offset[:, :, :-1], weight, bias, 1, 1, 1, mask)
    with pytest.raises(InputError, match="mask must be"):
        deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask[:, :3])
    with pytest.raises(InputError, match="multiple of 18"):
        deform_conv2d(x, offset[:, :5], weight, bias, 1, 1, 1, mask)


def test_module_starts_as_a_regular_conv_and_uses_the_official_names():
    module = DeformableConv2d(3, 5, kernel_size=3, padding=1)
    assert sorted(module.state_dict()) == [
        "modulator_conv.bias", "modulator_conv.weight", "offset_conv.bias", "offset_conv.weight",
        "regular_conv.weight",
    ]  # fmt: skip
    x = torch.randn(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))
    # Zero offsets, modulation 2 * sigmoid(0) = 1.
    expected = F.conv2d(x, module.regular_conv.weight, None, 1, 1)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
