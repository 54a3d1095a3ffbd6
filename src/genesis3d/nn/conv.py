"""2D convolution that stays fast in bfloat16 / float16 on CPUs without native support.

On a CPU without AVX-512 BF16 / FP16 (most desktop and laptop CPUs, Apple silicon under
Rosetta, CI machines), PyTorch runs a bfloat16 or float16 ``conv2d`` through its generic
im2col kernel (``aten::_slow_conv2d_forward``), which is 50-100x slower than the float32
oneDNN kernel: a FLUX.2 VAE encode at 512 px takes minutes instead of seconds. There,
:class:`Conv2d` computes in float32 from the same weights and rounds the result back to the
input dtype. The float32 kernel accumulates in float32 as the native half kernels do, so
this changes speed, not results beyond the last bit of rounding; a test checks it against
the plain convolution. Everywhere else (CUDA, MPS, float32, CPUs with native support) it is
``torch.nn.Conv2d`` unchanged. Parameter names and shapes are those of ``nn.Conv2d``.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["Conv2d", "cpu_computes_natively"]

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
        "this CPU has no fast %s convolution kernel; convolutions compute in float32 "
        "from the %s weights and round back (same results, faster)",
        dtype,
        dtype,
    )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes half-precision CPU convolutions in float32 where faster."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        dtype = input.dtype
        if input.device.type != "cpu" or dtype not in _HALF_DTYPES or cpu_computes_natively(dtype):
            return super()._conv_forward(input, weight, bias)
        _log_upcast(dtype)
        output = super()._conv_forward(
            input.float(), weight.float(), None if bias is None else bias.float()
        )
        return output.to(dtype)
