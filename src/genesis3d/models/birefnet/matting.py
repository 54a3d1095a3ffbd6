"""Alpha matte of one picture with BiRefNet, with the I/O of the TripoSplat reference.

RGB / 255 -> bilinear resize (align_corners) to size x size, aspect not preserved ->
ImageNet normalisation -> forward in the model's dtype -> sigmoid -> bilinear resize back to
H x W -> uint8(trunc(255 * clamp(alpha, 0, 1))). The resizes, the normalisation and the
sigmoid run in float32 on the model's device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import ConfigError, InputError
from genesis3d.models.birefnet.model import SIZE_MULTIPLE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Side of the square the released model runs at.
DEFAULT_SIZE = 1024


def predict_alpha(model: nn.Module, rgb: np.ndarray, *, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Foreground alpha of an RGB picture.

    Args:
        model: a :class:`~genesis3d.models.birefnet.BiRefNet` in eval mode.
        rgb: (H, W, 3) uint8 picture.
        size: side of the square the picture is resized to for the network; a positive
            multiple of 32 (1024 for the released model).

    Returns:
        (H, W) uint8 alpha, 255 = foreground.

    Raises:
        InputError: ``rgb`` is not an (H, W, 3) uint8 array with H, W > 0.
        ConfigError: ``size`` is not a positive multiple of 32, or the model is in training
            mode (its BatchNorm would use batch statistics).
    """
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.ndim != 3
        or rgb.shape[2] != 3
        or rgb.dtype != np.uint8
    ):
        described = (
            f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        )
        raise InputError(f"predict_alpha expects an (H, W, 3) uint8 RGB array, got {described}")
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise InputError(f"predict_alpha got an empty picture ({height} x {width})")
    if not isinstance(size, int) or size <= 0 or size % SIZE_MULTIPLE:
        raise ConfigError(f"size must be a positive multiple of {SIZE_MULTIPLE}, got {size!r}")
    if model.training:
        raise ConfigError("the BiRefNet model is in training mode; call model.eval() first")
    weight = next(model.parameters())
    device, dtype = weight.device, weight.dtype
    with torch.inference_mode():
        image = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).to(device)
        image = image.permute(2, 0, 1).unsqueeze(0).float() / 255.0
        image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=True)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        logits = model(((image - mean) / std).to(dtype))
        alpha = torch.sigmoid(logits.float())
        alpha = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=True)
        # Float -> uint8 conversion truncates toward zero, as the reference does.
        alpha = (alpha.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return alpha[0, 0].cpu().numpy()
