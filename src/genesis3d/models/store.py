"""The component store every family's pipeline holds: its networks under the device,
precision and offload policies chosen once at load time.

A family subclasses :class:`ComponentStore` and says how one component is loaded
(:meth:`ComponentStore.load`) and which components every call needs. The policies:

- ``offload="none"``: every required component is loaded onto the device when the store is
  built and stays there; an optional one (background removal) is loaded on first use and
  then kept.
- ``offload="model"``: each component is loaded onto the device for its stage only
  (:meth:`ComponentStore.use`) and its weights are freed afterwards, so the peak is about
  the largest component plus activations.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genesis3d.devices import release_memory, resolve_device
from genesis3d.errors import ConfigError

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
OFFLOAD_POLICIES = ("none", "model")


def parse_dtype(dtype: str | None) -> torch.dtype | None:
    """The torch dtype a user asked for; None for "auto" (the family's precision map).

    Raises:
        ConfigError: naming the accepted values.
    """
    if dtype in (None, "auto"):
        return None
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be auto, {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


class ComponentStore(ABC):
    """Holds a family's components under the pipeline's policies.

    Args:
        root: the weights folder.
        device: "auto", "cpu", "cuda[:N]" or "mps".
        offload: "none" or "model" (see the module docstring).

    Subclasses call :meth:`load_required` at the end of their ``__init__``, once they can
    load components.
    """

    def __init__(self, root: Path, *, device: str = "auto", offload: str = "none") -> None:
        if offload not in OFFLOAD_POLICIES:
            raise ConfigError(f"offload must be none or model, got {offload!r}")
        self.root = Path(root)
        self.device = resolve_device(device)
        self.offload = offload
        self.resident: dict[str, nn.Module] = {}

    @abstractmethod
    def load(self, name: str) -> nn.Module:
        """Load component ``name`` strictly onto :attr:`device`, in eval mode."""

    def load_required(self, names: Iterable[str]) -> None:
        """Under ``offload="none"``, load the components every call needs now."""
        if self.offload == "none":
            for name in names:
                if name not in self.resident:
                    self.resident[name] = self._logged_load(name)

    def _logged_load(self, name: str) -> nn.Module:
        logger.info("loading %s onto %s", name, self.device)
        return self.load(name)

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[Any]:
        """The component for one stage (loaded now and freed after, under ``offload="model"``)."""
        if name in self.resident:
            yield self.resident[name]
            return
        module = self._logged_load(name)
        if self.offload == "none":
            self.resident[name] = module  # an optional component, kept once loaded
            yield module
            return
        try:
            yield module
        finally:
            # Drop the weights even where the caller still holds the module (a ``with ...
            # as name`` binding outlives the block): its tensors become meta placeholders.
            module.to("meta")
            del module
            release_memory(self.device)
