"""BiRefNet background removal (ZhengPeng7/BiRefNet, MIT): Swin-L "v1" release, plain PyTorch.

Loads the official checkpoint unchanged (strict keys) and predicts an alpha matte.
"""

from __future__ import annotations

from genesis3d.models.birefnet.checkpoint import load_birefnet
from genesis3d.models.birefnet.config import BiRefNetConfig
from genesis3d.models.birefnet.deform_conv import (
    DeformableConv2d,
    deform_conv2d,
    reference_deform_conv2d,
)
from genesis3d.models.birefnet.matting import predict_alpha
from genesis3d.models.birefnet.model import BiRefNet
from genesis3d.models.birefnet.window_attention import biased_attention, reference_biased_attention

__all__ = [
    "BiRefNet",
    "BiRefNetConfig",
    "DeformableConv2d",
    "biased_attention",
    "deform_conv2d",
    "load_birefnet",
    "predict_alpha",
    "reference_biased_attention",
    "reference_deform_conv2d",
]
