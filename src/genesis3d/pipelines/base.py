"""The contract every model family's pipeline follows."""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from genesis3d.assets import MeshAsset, SplatAsset
from genesis3d.errors import ConfigError
from genesis3d.progress import ProgressCallback

OutputKind = Literal["mesh", "splats"]


@dataclass
class Generation:
    """What one pipeline call produced.

    Attributes:
        mesh: the mesh, when asked for and the family makes one.
        splats: the Gaussian splats, when asked for and the family makes them.
        condition: (H, W, 4) uint8 RGBA picture the model actually saw, after preprocessing.
        timings: seconds per stage.
    """

    mesh: MeshAsset | None = None
    splats: SplatAsset | None = None
    condition: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def asset(self, kind: OutputKind) -> MeshAsset | SplatAsset:
        value = self.mesh if kind == "mesh" else self.splats
        if value is None:
            raise ValueError(f"this generation has no {kind}")
        return value


class Pipeline(ABC):
    """Base class of a family's pipeline.

    A pipeline is built once by :func:`genesis3d.load_pipeline` with its policies (device,
    dtype, offload) and is then called once per picture. It never changes its components
    during a call, so one instance can serve many calls in turn.

    Construction: a family that needs no weights is built as ``cls(device=, dtype=)``; a
    family with weights provides a classmethod ``from_pretrained(folder, *, device, dtype,
    offload)`` that loads the official files from ``folder`` strictly.
    """

    #: registry name of the family
    name: ClassVar[str]
    #: the kinds of asset the family can produce, the primary one first
    outputs: ClassVar[tuple[OutputKind, ...]]
    #: frozen dataclass of the family's parameters; its defaults are the family's defaults
    params_class: ClassVar[type]

    @classmethod
    def parse_params(cls, params: dict[str, Any]) -> Any:
        """Validate family-specific parameters without loading anything.

        Returns:
            An instance of :attr:`params_class`.

        Raises:
            ConfigError: naming the unknown or out-of-range parameter and what is accepted.
        """
        return cls.params_class(**params)

    @abstractmethod
    def __call__(
        self,
        image: Any,
        *,
        seed: int = 0,
        outputs: tuple[OutputKind, ...] | None = None,
        background: str | None = None,
        progress: ProgressCallback | None = None,
        **params: Any,
    ) -> Generation:
        """Turn one picture into assets.

        Args:
            image: a path, bytes, PIL image, or (H, W, 3|4) uint8 array.
            seed: seed of every random draw of the call.
            outputs: which asset kinds to produce; None for the family's primary one.
            background: background-removal backend (see :mod:`genesis3d.preprocess`);
                None uses the picture's alpha matte when it has one, else ``auto``.
            progress: callback receiving :class:`genesis3d.progress.ProgressEvent`.
            **params: family-specific parameters, validated by the family.
        """


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall-clock seconds of the block as ``timings[name]`` (even if it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - start


_FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def flag_param(name: str, value: Any) -> bool:
    """A yes/no model parameter from a bool or its spelling in a form, JSON or ``-p KEY=VALUE``.

    Raises:
        ConfigError: anything but true/false, 1/0 or yes/no.
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _FLAG_WORDS:
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return _FLAG_WORDS[word]
