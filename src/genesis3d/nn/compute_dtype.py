"""Linear layers, convolutions and matmuls that stay fast in bfloat16 / float16 on any CPU.

On a CPU without AVX-512 BF16 / FP16 or AMX (most desktop and laptop CPUs and CI
machines), PyTorch has no fast half-precision kernels: a bfloat16 ``conv2d`` runs through
the generic im2col kernel (``aten::_slow_conv2d_forward``, 50-100x slower than float32) and
a bfloat16 GEMM is about 5x slower than a float32 one. There, the layers of this module
compute in float32 from the same half-precision weights and round the result back to the
input dtype, so weights keep their half-size memory and the arithmetic runs at float32
speed. The float32 kernels accumulate in float32 as the native half kernels do, so this
changes speed, not results beyond the last rounding step (tests compare against the plain
operations). Everywhere else (CUDA, MPS, float32, CPUs with native support) they are the
plain PyTorch operations, unchanged. Parameter names and shapes are those of ``nn.Linear``
``nn.Conv2d`` and ``nn.Conv3d``.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["Conv2d", "Conv3d", "Linear", "computes_in_float32", "cpu_computes_natively", "matmul"]

_HALF_DTYPES = (torch.bfloat16, torch.float16)


@functools.cache
def cpu_computes_natively(dtype: torch.dtype) -> bool:
    """Whether this CPU has fast oneDNN kernels for ``dtype`` (always True for float32/64)."""
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if dtype == torch.float16:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    return True


@functools.cache
def _log_upcast(dtype: torch.dtype) -> None:
    logger.info(
        "this CPU has no fast %s kernels; linear layers, convolutions and matmuls compute in "
        "float32 from the %s weights and round back (same results, faster)",
        dtype,
        dtype,
    )


def computes_in_float32(tensor: torch.Tensor) -> bool:
    """Whether operations on ``tensor`` take the float32 route (half dtype on a slow CPU)."""
    dtype = tensor.dtype
    if tensor.device.type != "cpu" or dtype not in _HALF_DTYPES or cpu_computes_natively(dtype):
        return False
    _log_upcast(dtype)
    return True


def _float(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.float()


class Linear(nn.Linear):
    """``nn.Linear`` that computes half-precision CPU products in float32 where faster."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not computes_in_float32(input):
            return super().forward(input)
        return F.linear(input.float(), self.weight.float(), _float(self.bias)).to(input.dtype)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes half-precision CPU convolutions in float32 where faster."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if not computes_in_float32(input):
            return super()._conv_forward(input, weight, bias)
        output = super()._conv_forward(input.float(), weight.float(), _float(bias))
        return output.to(input.dtype)


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that computes half-precision CPU convolutions in float32 where faster."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if not computes_in_float32(input):
            return super()._conv_forward(input, weight, bias)
        output = super()._conv_forward(input.float(), weight.float(), _float(bias))
        return output.to(input.dtype)


def matmul(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``torch.matmul`` with the same CPU half-precision policy as :class:`Linear`."""
    if not computes_in_float32(left):
        return torch.matmul(left, right)
    return torch.matmul(left.float(), right.float()).to(left.dtype)
