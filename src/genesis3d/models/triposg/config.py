"""Frozen configs of the TripoSG components, read from the official diffusers config files.

Each ``from_config`` takes the ``config.json`` dict exactly as ``save_pretrained`` writes it.
Keys starting with ``_`` are diffusers bookkeeping (``_class_name``, ``_diffusers_version``)
and are ignored; any other key the class does not know is refused, naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from genesis3d.errors import ConfigError


def _from_config(cls: type, config: Mapping[str, Any], what: str) -> Any:
    args = {key: value for key, value in config.items() if not key.startswith("_")}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"{what} config has unknown keys {unknown}; expected a subset of {sorted(known)}"
        )
    return cls(**args)


def _check_heads(width: int, heads: int, what: str) -> None:
    if heads <= 0 or width % heads:
        raise ConfigError(f"{what}: width {width} is not divisible by {heads} attention heads")


@dataclass(frozen=True)
class TripoSGDiTConfig:
    """``transformer/config.json`` of TripoSG; the defaults are the released model's.

    Attributes:
        num_attention_heads: heads of every attention (head dim = width / heads).
        width: token width.
        in_channels: latent channels (input and output).
        num_layers: blocks; blocks after ``num_layers // 2`` take a long skip.
        cross_attention_dim: width of the condition tokens (DINOv2-L: 1024).
        use_cross_attention_2, cross_attention_2_dim: the scribble variant's second
            condition; not supported (the image model has none).
    """

    num_attention_heads: int = 16
    width: int = 2048
    in_channels: int = 64
    num_layers: int = 21
    cross_attention_dim: int = 1024
    use_cross_attention_2: bool = False
    cross_attention_2_dim: int | None = None

    def __post_init__(self) -> None:
        if self.use_cross_attention_2 or self.cross_attention_2_dim is not None:
            raise ConfigError(
                "TripoSG transformer: use_cross_attention_2 (the scribble model) is not supported; "
                "use the image model's config (use_cross_attention_2=false)"
            )
        _check_heads(self.width, self.num_attention_heads, "TripoSG transformer")
        if self.width % 2:
            raise ConfigError(f"TripoSG transformer: width must be even, got {self.width}")
        if self.num_layers < 1:
            raise ConfigError(
                f"TripoSG transformer: num_layers must be >= 1, got {self.num_layers}"
            )

    @property
    def head_dim(self) -> int:
        return self.width // self.num_attention_heads

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return _from_config(cls, config, "TripoSG transformer")


@dataclass(frozen=True)
class TripoSGVAEConfig:
    """``vae/config.json`` of TripoSG; the defaults are the released model's."""

    in_channels: int = 3
    latent_channels: int = 64
    num_attention_heads: int = 8
    width_encoder: int = 512
    width_decoder: int = 1024
    num_layers_encoder: int = 8
    num_layers_decoder: int = 16
    embedding_type: str = "frequency"
    embed_frequency: int = 8
    embed_include_pi: bool = False

    def __post_init__(self) -> None:
        if self.embedding_type != "frequency":
            raise ConfigError(
                f"TripoSG VAE: embedding_type must be 'frequency' (the released model), got {self.embedding_type!r}"
            )
        if self.in_channels != 3:
            raise ConfigError(f"TripoSG VAE: in_channels must be 3 (xyz), got {self.in_channels}")
        _check_heads(self.width_encoder, self.num_attention_heads, "TripoSG VAE encoder")
        _check_heads(self.width_decoder, self.num_attention_heads, "TripoSG VAE decoder")
        if self.embed_frequency < 1:
            raise ConfigError(
                f"TripoSG VAE: embed_frequency must be >= 1, got {self.embed_frequency}"
            )

    @property
    def embed_dim(self) -> int:
        """Width of the Fourier point embedding: [p, sin, cos] = 3 + 6 F."""
        return self.in_channels * (1 + 2 * self.embed_frequency)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return _from_config(cls, config, "TripoSG VAE")


@dataclass(frozen=True)
class RectifiedFlowConfig:
    """``scheduler/scheduler_config.json`` of TripoSG (``RectifiedFlowScheduler``)."""

    num_train_timesteps: int = 1000
    shift: float = 1.0
    use_dynamic_shifting: bool = False

    def __post_init__(self) -> None:
        if self.use_dynamic_shifting:
            raise ConfigError(
                "TripoSG scheduler: use_dynamic_shifting is not supported (released: false)"
            )
        if self.shift <= 0:
            raise ConfigError(f"TripoSG scheduler: shift must be positive, got {self.shift}")
        if self.num_train_timesteps < 1:
            raise ConfigError(
                f"TripoSG scheduler: num_train_timesteps must be >= 1, got {self.num_train_timesteps}"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return _from_config(cls, config, "TripoSG scheduler")
