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


def release_memory(device) -> None:
    """Give the memory of freed components back: to the CUDA cache's owner, or to the system.

    On the CPU, glibc keeps freed blocks below its (adaptive, up to 32 MB) mmap threshold in
    its heap, so a freed 3 GB model would stay in the process' resident memory and add to
    the next stage's peak; ``malloc_trim`` returns those pages. Elsewhere it is a no-op.
    """
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
    else:
        _malloc_trim()


def _malloc_trim() -> None:
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        logger.debug("malloc_trim is not available; freed host memory stays with the process")
        return
    trim(0)
