"""Choice of the compute device. Imports torch only when called."""

from __future__ import annotations

import logging
from typing import Literal

from genesis3d.errors import ConfigError

logger = logging.getLogger(__name__)

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto"):
    """Turn a device name into a ``torch.device``.

    Args:
        name: "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".

    Returns:
        The ``torch.device``.

    Raises:
        ConfigError: for an unknown name or a device this machine does not have.
    """
    import torch

    key = (name or "auto").strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = key.split(":")[0]
    if base not in ("cpu", "cuda", "mps"):
        raise ConfigError(
            f"device must be one of {', '.join(DEVICE_NAMES)} (or cuda:N), got {name!r}"
        )
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for but this PyTorch build sees no CUDA GPU; use --device cpu (or auto), or install a CUDA build of PyTorch"
        )
    if base == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device {name!r} was asked for but Apple MPS is not available here; use --device cpu (or auto)"
        )
    return torch.device(key)
