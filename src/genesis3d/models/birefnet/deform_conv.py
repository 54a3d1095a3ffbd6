"""Modulated deformable convolution (DCNv2) in plain PyTorch, with torchvision's semantics.

``deform_conv2d`` computes what ``torchvision.ops.deform_conv2d`` computes: for output pixel
(oy, ox) and kernel tap (i, j), the input is sampled at

    y = oy * stride_h - pad_h + i * dilation_h + offset_y,
    x = ox * stride_w - pad_w + j * dilation_w + offset_x,

by bilinear interpolation in which each of the four neighbours outside the picture counts as
zero (and a point at or beyond one pixel outside is zero), multiplied by the mask, and the
samples are contracted with the weight like a convolution. Offsets are laid out as torchvision
lays them: channel ``g * 2K + 2k`` is the y offset and ``g * 2K + 2k + 1`` the x offset of tap
``k = i * kw + j`` in offset group ``g``; mask channel ``g * K + k`` is that tap's modulation.

The fast version loops over the K taps, samples each tap's positions for every channel with
``grid_sample`` (same zero-outside rule) and contracts them with that tap's weight slice; it
holds one (B, C, Ho*Wo) sample buffer at a time rather than torchvision's (C*K, Ho*Wo) columns.
Sampling positions and interpolation weights are computed in float32 whatever the input
dtype (in half precision a coordinate near 256 would be off by up to 1/8 of a pixel), and the
taps are summed in float32. ``reference_deform_conv2d`` is its slow, loop-per-sample twin.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import InputError
from genesis3d.nn.compute_dtype import Conv2d, matmul


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _geometry(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Check the shapes; return (output height, output width, offset groups, weight groups)."""
    if input.dim() != 4 or weight.dim() != 4:
        raise InputError(
            f"deform_conv2d: input and weight must be 4-D, got {tuple(input.shape)} and {tuple(weight.shape)}"
        )
    batch, channels, height, width = input.shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    if (
        group_channels == 0
        or channels % group_channels
        or out_channels % (channels // group_channels)
    ):
        raise InputError(
            f"deform_conv2d: weight {tuple(weight.shape)} does not fit {channels} input channels"
        )
    out_h = (height + 2 * padding[0] - dilation[0] * (kernel_h - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kernel_w - 1) - 1) // stride[1] + 1
    if out_h <= 0 or out_w <= 0:
        raise InputError(f"deform_conv2d: the output would be empty ({out_h} x {out_w})")
    taps = kernel_h * kernel_w
    if offset.dim() != 4 or offset.shape[1] % (2 * taps) or offset.shape[1] == 0:
        raise InputError(
            f"deform_conv2d: offset must have a multiple of {2 * taps} channels, got {tuple(offset.shape)}"
        )
    offset_groups = offset.shape[1] // (2 * taps)
    if channels % offset_groups:
        raise InputError(
            f"deform_conv2d: {channels} input channels do not split into {offset_groups} offset groups"
        )
    if tuple(offset.shape) != (batch, 2 * offset_groups * taps, out_h, out_w):
        raise InputError(
            f"deform_conv2d: offset must be {(batch, 2 * offset_groups * taps, out_h, out_w)}, got {tuple(offset.shape)}"
        )
    if mask is not None and tuple(mask.shape) != (batch, offset_groups * taps, out_h, out_w):
        raise InputError(
            f"deform_conv2d: mask must be {(batch, offset_groups * taps, out_h, out_w)}, got {tuple(mask.shape)}"
        )
    return out_h, out_w, offset_groups, channels // group_channels


def _sample_bilinear(
    planes: torch.Tensor, y: torch.Tensor, x: torch.Tensor, out_h: int, out_w: int
) -> torch.Tensor:
    """Bilinear samples with zero outside the picture, through ``grid_sample``.

    ``grid_sample`` with zero padding treats each of the four neighbours outside the picture
    as zero, which is torchvision's rule; ``align_corners=False`` maps pixel coordinate p of
    a side of n pixels to (2p + 1) / n - 1, which also holds for n = 1.

    Args:
        planes: (N, Cg, H, W) float32 input (N = batch * offset groups).
        y, x: (N, Ho*Wo) float32 sample positions in pixels.

    Returns:
        (N, Cg, Ho*Wo) float32.
    """
    height, width = planes.shape[-2:]
    grid = torch.stack([(2 * x + 1) / width - 1, (2 * y + 1) / height - 1], dim=-1)
    grid = grid.reshape(planes.shape[0], out_h, out_w, 2)
    samples = F.grid_sample(
        planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return samples.reshape(planes.shape[0], planes.shape[1], out_h * out_w)


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated deformable 2-D convolution (torchvision ``deform_conv2d`` semantics).

    Args:
        input: (B, C, H, W).
        offset: (B, 2 * G * kh * kw, Ho, Wo), (y, x) pairs per tap, G offset groups.
        weight: (O, C / groups, kh, kw).
        bias: (O,) or None.
        stride, padding, dilation: ints or (h, w) pairs.
        mask: (B, G * kh * kw, Ho, Wo) modulation, or None for 1.

    Returns:
        (B, O, Ho, Wo) in the dtype of ``input``.

    Raises:
        InputError: shapes that do not fit together.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_h, out_w, offset_groups, groups = _geometry(
        input, offset, weight, mask, stride, padding, dilation
    )
    batch, channels, height, width = input.shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    taps, length = kernel_h * kernel_w, out_h * out_w
    device = input.device

    planes = input.float().reshape(batch * offset_groups, channels // offset_groups, height, width)
    offsets = offset.float().reshape(batch * offset_groups, taps, 2, length)
    masks = None if mask is None else mask.float().reshape(batch * offset_groups, taps, 1, length)
    rows = torch.arange(out_h, device=device, dtype=torch.float32) * stride[0] - padding[0]
    cols = torch.arange(out_w, device=device, dtype=torch.float32) * stride[1] - padding[1]
    base_y = rows[:, None].expand(out_h, out_w).reshape(length)
    base_x = cols[None, :].expand(out_h, out_w).reshape(length)
    # (groups, O/groups, C/groups, kh, kw): each weight group sees its own input channels.
    grouped_weight = weight.reshape(
        groups, out_channels // groups, group_channels, kernel_h, kernel_w
    )

    # One contiguous (groups, O/g, Cg) weight slice per tap: each tap is one wide GEMM.
    tap_weights = grouped_weight.permute(3, 4, 0, 1, 2).contiguous()
    output = torch.zeros(batch, groups, out_channels // groups, length, device=device)
    for tap in range(taps):
        i, j = divmod(tap, kernel_w)
        y = base_y + i * dilation[0] + offsets[:, tap, 0]
        x = base_x + j * dilation[1] + offsets[:, tap, 1]
        samples = _sample_bilinear(planes, y, x, out_h, out_w)
        if masks is not None:
            samples = samples * masks[:, tap]
        samples = samples.reshape(batch, groups, group_channels, length).to(input.dtype)
        output += matmul(tap_weights[i, j], samples).float()
    output = output.reshape(batch, out_channels, out_h, out_w)
    if bias is not None:
        output = output + bias.float().reshape(1, out_channels, 1, 1)
    return output.to(input.dtype)


def _reference_bilinear(plane: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """torchvision's ``bilinear_interpolate`` for one point of a (C, H, W) stack."""
    height, width = plane.shape[-2:]
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return plane.new_zeros(plane.shape[0])
    y_low, x_low = math.floor(y), math.floor(x)
    y_high, x_high = y_low + 1, x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    value = plane.new_zeros(plane.shape[0])
    if y_low >= 0 and x_low >= 0:
        value = value + hy * hx * plane[:, y_low, x_low]
    if y_low >= 0 and x_high <= width - 1:
        value = value + hy * lx * plane[:, y_low, x_high]
    if y_high <= height - 1 and x_low >= 0:
        value = value + ly * hx * plane[:, y_high, x_low]
    if y_high <= height - 1 and x_high <= width - 1:
        value = value + ly * lx * plane[:, y_high, x_high]
    return value


def reference_deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Slow twin of :func:`deform_conv2d`: one Python loop step per sample, in float64.

    Same arguments and result; it builds torchvision's im2col columns point by point and
    contracts them with the weight. For tests on small inputs only.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_h, out_w, offset_groups, groups = _geometry(
        input, offset, weight, mask, stride, padding, dilation
    )
    batch, channels, _, _ = input.shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    per_offset_group = channels // offset_groups
    data = input.double()
    columns = torch.zeros(batch, channels, kernel_h, kernel_w, out_h, out_w, dtype=torch.float64)
    for b in range(batch):
        for g in range(offset_groups):
            plane = data[b, g * per_offset_group : (g + 1) * per_offset_group]
            for i in range(kernel_h):
                for j in range(kernel_w):
                    tap = i * kernel_w + j
                    for oy in range(out_h):
                        for ox in range(out_w):
                            dy = float(offset[b, g * 2 * taps + 2 * tap, oy, ox])
                            dx = float(offset[b, g * 2 * taps + 2 * tap + 1, oy, ox])
                            y = oy * stride[0] - padding[0] + i * dilation[0] + dy
                            x = ox * stride[1] - padding[1] + j * dilation[1] + dx
                            scale = 1.0 if mask is None else float(mask[b, g * taps + tap, oy, ox])
                            columns[
                                b, g * per_offset_group : (g + 1) * per_offset_group, i, j, oy, ox
                            ] = scale * _reference_bilinear(plane, y, x)
    output = torch.zeros(batch, out_channels, out_h, out_w, dtype=torch.float64)
    per_group_out = out_channels // groups
    for o in range(out_channels):
        group = o // per_group_out
        block = columns[:, group * group_channels : (group + 1) * group_channels]
        output[:, o] = torch.einsum("cij,bcijyx->byx", weight[o].double(), block)
        if bias is not None:
            output[:, o] += float(bias[o])
    return output.to(input.dtype)


class DeformableConv2d(nn.Module):
    """BiRefNet's deformable conv: offsets and a 2*sigmoid modulation predicted from the input.

    Parameter names match the official checkpoint (``offset_conv``, ``modulator_conv``,
    ``regular_conv``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        taps = kernel_size * kernel_size
        self.offset_conv = Conv2d(in_channels, 2 * taps, kernel_size, stride, padding, bias=True)
        self.modulator_conv = Conv2d(in_channels, taps, kernel_size, stride, padding, bias=True)
        self.regular_conv = Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=bias
        )
        # As upstream: start as a regular conv (zero offsets, modulation 1).
        for conv in (self.offset_conv, self.modulator_conv):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_channels, Ho, Wo)."""
        offset = self.offset_conv(x)
        modulator = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(
            x,
            offset,
            self.regular_conv.weight,
            self.regular_conv.bias,
            stride=self.stride,
            padding=self.padding,
            mask=modulator,
        )


__all__ = ["DeformableConv2d", "deform_conv2d", "reference_deform_conv2d"]
