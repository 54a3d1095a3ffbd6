"""Frozen configs of the TRELLIS.2 components, read from the official ``args`` unchanged.

Each ``from_args`` takes the ``args`` of an official ``{"name", "args"}`` checkpoint file and
refuses keys it does not know, naming them. Values the released models never use and this
port does not implement are refused in ``__post_init__`` with the supported value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from genesis3d.errors import ConfigError


def _from_args(cls: type, args: Mapping[str, Any], what: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"{what} config has unknown keys {unknown}; expected a subset of {sorted(known)}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    return cls(**values)


DTYPE_NAMES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class FlowConfig:
    """Arguments of ``SparseStructureFlowModel`` and ``(Elastic)SLatFlowModel``.

    ``dtype`` is the precision the official module casts its transformer blocks to; here it
    is informational (precision is chosen by the pipeline), and is validated only.
    ``resolution`` is the dense grid of the structure flow; the sparse flows ignore it.
    """

    resolution: int
    in_channels: int
    model_channels: int
    cond_channels: int
    out_channels: int
    num_blocks: int
    num_heads: int | None = None
    num_head_channels: int = 64
    mlp_ratio: float = 4
    pe_mode: str = "ape"
    rope_freq: tuple[float, float] = (1.0, 10000.0)
    dtype: str = "float32"
    use_checkpoint: bool = False
    share_mod: bool = False
    initialization: str = "vanilla"
    qk_rms_norm: bool = False
    qk_rms_norm_cross: bool = False

    def __post_init__(self) -> None:
        if self.pe_mode != "rope":
            raise ConfigError(
                f"flow model: pe_mode must be 'rope' (the released models), got {self.pe_mode!r}"
            )
        if not self.share_mod:
            raise ConfigError("flow model: only share_mod=True (the released models) is supported")
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(f"flow model: dtype must be one of {DTYPE_NAMES}, got {self.dtype!r}")
        if self.initialization not in ("vanilla", "scaled"):
            raise ConfigError(
                f"flow model: initialization must be vanilla or scaled, got {self.initialization!r}"
            )
        heads = self.heads
        if heads <= 0 or self.model_channels % heads or (self.model_channels // heads) % 2:
            raise ConfigError(
                f"flow model: model_channels {self.model_channels} must split into {heads} heads of an even size"
            )

    @property
    def heads(self) -> int:
        return self.num_heads or self.model_channels // self.num_head_channels

    @property
    def head_dim(self) -> int:
        return self.model_channels // self.heads

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "flow model")


@dataclass(frozen=True)
class StructureDecoderConfig:
    """Arguments of ``SparseStructureDecoder`` (the TRELLIS v1 dense occupancy decoder)."""

    out_channels: int
    latent_channels: int
    num_res_blocks: int
    channels: tuple[int, ...]
    num_res_blocks_middle: int = 2
    norm_type: str = "layer"
    use_fp16: bool = False

    def __post_init__(self) -> None:
        if self.norm_type != "layer":
            raise ConfigError(
                f"structure decoder: norm_type must be 'layer' (the released model), got {self.norm_type!r}"
            )
        if not self.channels:
            raise ConfigError("structure decoder: channels must list at least one width")

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "structure decoder")


_BLOCKS = ("SparseConvNeXtBlock3d",)
_UP_BLOCKS = ("SparseResBlockC2S3d",)
_DOWN_BLOCKS = ("SparseResBlockS2C3d",)


def _check_stages(
    what: str,
    model_channels: tuple[int, ...],
    num_blocks: tuple[int, ...],
    block_type: tuple[str, ...],
    resample_type: tuple[str, ...],
    resample_allowed: tuple[str, ...],
    block_args: tuple[Mapping[str, Any], ...],
) -> None:
    stages = len(model_channels)
    if not (len(num_blocks) == len(block_type) == len(block_args) == stages):
        raise ConfigError(
            f"{what}: model_channels, num_blocks, block_type and block_args need one entry per stage ({stages})"
        )
    if len(resample_type) != stages - 1:
        raise ConfigError(
            f"{what}: expected {stages - 1} resampling block types, got {len(resample_type)}"
        )
    for name in block_type:
        if name not in _BLOCKS:
            raise ConfigError(f"{what}: block type must be one of {_BLOCKS}, got {name!r}")
    for name in resample_type:
        if name not in resample_allowed:
            raise ConfigError(
                f"{what}: resampling block must be one of {resample_allowed}, got {name!r}"
            )
    for args in block_args:
        unknown = sorted(set(args) - {"use_checkpoint"})
        if unknown:
            raise ConfigError(
                f"{what}: block_args has unknown keys {unknown}; expected use_checkpoint"
            )


@dataclass(frozen=True)
class SparseUnetDecoderConfig:
    """Arguments of ``SparseUnetVaeDecoder`` (the texture decoder; shape decoder's trunk)."""

    out_channels: int
    model_channels: tuple[int, ...]
    latent_channels: int
    num_blocks: tuple[int, ...]
    block_type: tuple[str, ...]
    up_block_type: tuple[str, ...]
    block_args: tuple[Mapping[str, Any], ...]
    use_fp16: bool = False
    pred_subdiv: bool = True

    def __post_init__(self) -> None:
        _check_stages(
            "sparse decoder", self.model_channels, self.num_blocks, self.block_type,
            self.up_block_type, _UP_BLOCKS, self.block_args,
        )  # fmt: skip

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "sparse decoder")


@dataclass(frozen=True)
class FlexiDualGridDecoderConfig:
    """Arguments of ``FlexiDualGridVaeDecoder`` (the shape decoder, 7 output channels)."""

    resolution: int
    model_channels: tuple[int, ...]
    latent_channels: int
    num_blocks: tuple[int, ...]
    block_type: tuple[str, ...]
    up_block_type: tuple[str, ...]
    block_args: tuple[Mapping[str, Any], ...]
    use_fp16: bool = False
    voxel_margin: float = 0.5

    def __post_init__(self) -> None:
        self.unet()

    def unet(self) -> SparseUnetDecoderConfig:
        return SparseUnetDecoderConfig(
            out_channels=7,
            model_channels=self.model_channels,
            latent_channels=self.latent_channels,
            num_blocks=self.num_blocks,
            block_type=self.block_type,
            up_block_type=self.up_block_type,
            block_args=self.block_args,
            use_fp16=self.use_fp16,
            pred_subdiv=True,
        )

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "dual grid decoder")


@dataclass(frozen=True)
class SparseUnetEncoderConfig:
    """Arguments of ``SparseUnetVaeEncoder`` (``FlexiDualGridVaeEncoder``: in_channels 6)."""

    model_channels: tuple[int, ...]
    latent_channels: int
    num_blocks: tuple[int, ...]
    block_type: tuple[str, ...]
    down_block_type: tuple[str, ...]
    block_args: tuple[Mapping[str, Any], ...]
    in_channels: int = 6
    use_fp16: bool = False

    def __post_init__(self) -> None:
        _check_stages(
            "sparse encoder", self.model_channels, self.num_blocks, self.block_type,
            self.down_block_type, _DOWN_BLOCKS, self.block_args,
        )  # fmt: skip

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Self:
        return _from_args(cls, args, "sparse encoder")
