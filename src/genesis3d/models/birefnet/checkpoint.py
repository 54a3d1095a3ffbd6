"""Load the official BiRefNet safetensors checkpoint strictly."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genesis3d.errors import ConfigError
from genesis3d.models.birefnet.config import BiRefNetConfig
from genesis3d.models.birefnet.model import BiRefNet
from genesis3d.weights.loading import load_into, load_safetensors, read_header

logger = logging.getLogger(__name__)


def load_birefnet(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    config: BiRefNetConfig | None = None,
) -> BiRefNet:
    """Build BiRefNet without initialising it and load a checkpoint into it strictly.

    The module is built on the meta device and the checkpoint's tensors are assigned to it,
    so no random initialisation is ever computed.

    Args:
        path: the ``.safetensors`` file (official key names, e.g. ``birefnet.safetensors``).
        device: where the weights go.
        dtype: floating-point dtype of the weights (integer buffers keep theirs).
        config: sizes of the network; default the released Swin-L model.

    Returns:
        The model in eval mode.

    Raises:
        WeightsError: a missing or invalid file, or one whose keys or shapes do not fit the
            model (every missing, unexpected and mis-shaped key is named in one message).
        ConfigError: ``dtype`` is not a floating-point dtype.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    config = config or BiRefNetConfig()
    read_header(path)  # a clear error for a missing or malformed file before torch opens it
    with torch.device("meta"):
        model = BiRefNet(config)
    state = load_safetensors(path, dtype=dtype, device=device)
    load_into(model, state, source=str(path), assign=True)
    logger.info("loaded BiRefNet from %s (%s, %s)", path, device, dtype)
    return model.eval()
