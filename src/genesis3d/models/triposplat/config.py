"""Frozen configs of the TripoSplat components, read from the official constructor args.

Each ``from_args`` takes the dict exactly as the official code names it (``FLOW_MODEL_ARGS``,
``OCTREE_DECODER_ARGS``, ``GS_DECODER_ARGS``) and refuses keys it does not know, naming them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from genesis3d.errors import ConfigError


def _from_args(cls: type, args: Mapping[str, Any], what: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"{what} config has unknown keys {unknown}; expected a subset of {sorted(known)}"
        )
    return cls(**dict(args))


def _heads(
    model_channels: int, num_heads: int | None, num_head_channels: int, what: str
) -> tuple[int, int]:
    heads = num_heads if num_heads else model_channels // num_head_channels
    if heads <= 0 or model_channels % heads:
        raise ConfigError(
            f"{what}: model_channels {model_channels} is not divisible by {heads} heads"
        )
    return heads, model_channels // heads


@dataclass(frozen=True)
class FlowModelConfig:
    """``LatentSeqMMFlowModel`` arguments; the defaults are the released model's."""

    q_token_length: int = 8192
    in_channels: int = 16
    cam_channels: int = 5
    out_channels: int = 16
    model_channels: int = 1024
    cond_channels: int = 1280
    cond2_channels: int = 128
    num_refiner_blocks: int = 2
    num_blocks: int = 24
    num_heads: int | None = 16
    num_head_channels: int = 64
    mlp_ratio: float = 4
    qk_rms_norm: bool = True
    share_mod: bool = True
    use_shift_table: bool = True

    def __post_init__(self) -> None:
        for name in ("qk_rms_norm", "share_mod", "use_shift_table"):
            if not getattr(self, name):
                raise ConfigError(f"flow model: only {name}=True (the released model) is supported")
        _heads(self.model_channels, self.num_heads, self.num_head_channels, "flow model")

    @property
    def heads(self) -> int:
        return _heads(self.model_channels, self.num_heads, self.num_head_channels, "flow model")[0]

    @property
    def head_dim(self) -> int:
        return _heads(self.model_channels, self.num_heads, self.num_head_channels, "flow model")[1]

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "flow model")


@dataclass(frozen=True)
class OctreeDecoderConfig:
    """``OctreeProbabilityFixedlenDecoder`` arguments."""

    model_channels: int = 1024
    cond_channels: int = 16
    num_blocks: int = 4
    num_heads: int | None = 16
    num_head_channels: int = 64
    mlp_ratio: float = 4
    share_mod: bool = True
    additional_level_embed: bool = False
    qk_rms_norm_cross: bool = True
    no_norm: bool = False

    def __post_init__(self) -> None:
        if (
            not self.share_mod
            or self.additional_level_embed
            or not self.qk_rms_norm_cross
            or self.no_norm
        ):
            raise ConfigError(
                "octree decoder: only share_mod=True, additional_level_embed=False, "
                "qk_rms_norm_cross=True, no_norm=False (the released model) are supported"
            )
        _heads(self.model_channels, self.num_heads, self.num_head_channels, "octree decoder")

    @property
    def heads(self) -> int:
        return _heads(
            self.model_channels, self.num_heads, self.num_head_channels, "octree decoder"
        )[0]

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "octree decoder")


@dataclass(frozen=True)
class RepresentationConfig:
    """How the 480 decoder features become 32 Gaussians per point."""

    lr: Mapping[str, float] = field(
        default_factory=lambda: {
            "_xyz": 1.0,
            "_features_dc": 1.0,
            "_opacity": 1.0,
            "_scaling": 1.0,
            "_rotation": 0.1,
        }
    )
    perturb_offset: bool = True
    perturbe_size: float = 1.5
    offset_scale: float = 0.05
    num_gaussians: int = 32
    filter_kernel_size_3d: float = 0.0009
    scaling_bias: float = 0.004
    opacity_bias: float = 0.1
    scaling_activation: str = "softplus"

    def __post_init__(self) -> None:
        if self.scaling_activation != "softplus":
            raise ConfigError(
                f"scaling_activation must be 'softplus' (the released model), got {self.scaling_activation!r}"
            )
        if not self.perturb_offset:
            raise ConfigError("perturb_offset must be True (the released model)")
        missing = {"_xyz", "_features_dc", "_opacity", "_scaling", "_rotation"} - set(self.lr)
        if missing:
            raise ConfigError(f"representation_config.lr lacks {sorted(missing)}")

    @property
    def features_per_point(self) -> int:
        return self.num_gaussians * 15


@dataclass(frozen=True)
class GaussianDecoderConfig:
    """``ElasticGaussianFixedlenDecoder`` arguments."""

    in_channels: int = 3
    model_channels: int = 1024
    cond_channels: int = 16
    attn_mode: str = "full"
    num_blocks: int = 16
    num_heads: int | None = 16
    num_head_channels: int = 64
    mlp_ratio: float = 4
    use_learned_offset_scale: bool = True
    use_per_offset: bool = True
    qk_rms_norm: bool = True
    qk_rms_norm_cross: bool = True
    no_norm: bool = False
    representation_config: RepresentationConfig = field(default_factory=RepresentationConfig)

    def __post_init__(self) -> None:
        if isinstance(self.representation_config, Mapping):
            rep = _from_args(RepresentationConfig, self.representation_config, "representation")
            object.__setattr__(self, "representation_config", rep)
        if self.attn_mode != "full":
            raise ConfigError(f"gaussian decoder: attn_mode must be 'full', got {self.attn_mode!r}")
        if not (self.use_learned_offset_scale and self.use_per_offset and self.qk_rms_norm):
            raise ConfigError(
                "gaussian decoder: only use_learned_offset_scale, use_per_offset and qk_rms_norm "
                "set to True (the released model) are supported"
            )
        if not self.qk_rms_norm_cross or self.no_norm or self.in_channels != 3:
            raise ConfigError(
                "gaussian decoder: qk_rms_norm_cross=True, no_norm=False, in_channels=3 required"
            )
        _heads(self.model_channels, self.num_heads, self.num_head_channels, "gaussian decoder")

    @property
    def heads(self) -> int:
        return _heads(
            self.model_channels, self.num_heads, self.num_head_channels, "gaussian decoder"
        )[0]

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "gaussian decoder")
