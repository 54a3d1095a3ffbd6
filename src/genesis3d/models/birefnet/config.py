"""Frozen config of BiRefNet (ZhengPeng7/BiRefNet, Swin-L backbone, "v1" release).

The defaults are the released general model's: Swin-L backbone (embed 192, depths 2-2-18-2,
heads 6-12-24-48, window 12, patch 4), multi-scale input "cat" (the backbone runs again on a
half-size copy), 3 context levels, image-patch input blocks, BasicDecBlk with deformable ASPP,
BasicLatBlk lateral convs, multi-scale supervision heads and the gradient ("gdt") attention.
Only the sizes are options; the released wiring is fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from genesis3d.errors import ConfigError

#: Stride of the backbone's first stage (Swin patch size); the decoder's image-patch blocks
#: assume it (their input channels are 3 * stride**2 for strides 32, 16, 8, 4, 1).
PATCH_SIZE = 4

#: Number of backbone stages; the decoder has one block per stage.
NUM_STAGES = 4


@dataclass(frozen=True)
class BiRefNetConfig:
    """BiRefNet sizes; the defaults build the released Swin-L model.

    Attributes:
        embed_dim: Swin channels of stage 1 (stage i has ``embed_dim * 2**i``).
        depths: Swin blocks per stage.
        num_heads: attention heads per stage.
        window_size: Swin window side; odd blocks shift by ``window_size // 2``.
        mlp_ratio: Swin MLP hidden size over its width.
        decoder_channels: inner width of the decoder blocks (official: fixed 64).
        aspp_channels: width of each deformable ASPP branch (official: 256).
        aspp_kernel_sizes: kernel sizes of the parallel deformable branches (official: 1, 3, 7).
        input_block_channels: inner width of the image-patch input blocks (official: 64).
        gradient_channels: width of the gradient-attention convs (official: 16).
        context_levels: how many of stages 1-3 are concatenated onto stage 4 (official: 3).
    """

    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 12
    mlp_ratio: float = 4.0
    decoder_channels: int = 64
    aspp_channels: int = 256
    aspp_kernel_sizes: tuple[int, ...] = (1, 3, 7)
    input_block_channels: int = 64
    gradient_channels: int = 16
    context_levels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "aspp_kernel_sizes", tuple(int(k) for k in self.aspp_kernel_sizes))
        if len(self.depths) != NUM_STAGES or len(self.num_heads) != NUM_STAGES:
            raise ConfigError(
                f"BiRefNet: depths and num_heads must have {NUM_STAGES} entries (one per stage), "
                f"got {self.depths} and {self.num_heads}"
            )
        if self.embed_dim <= 0 or any(d <= 0 for d in self.depths):
            raise ConfigError(
                f"BiRefNet: embed_dim and depths must be positive, got {self.embed_dim} and {self.depths}"
            )
        for stage, heads in enumerate(self.num_heads):
            width = self.stage_channels[stage]
            if heads <= 0 or width % heads:
                raise ConfigError(
                    f"BiRefNet: stage {stage} has {width} channels, not divisible by {heads} heads"
                )
        if self.window_size < 1:
            raise ConfigError(f"BiRefNet: window_size must be at least 1, got {self.window_size}")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"BiRefNet: mlp_ratio must be positive, got {self.mlp_ratio}")
        for name in (
            "decoder_channels",
            "aspp_channels",
            "input_block_channels",
            "gradient_channels",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"BiRefNet: {name} must be positive, got {getattr(self, name)}")
        if not self.aspp_kernel_sizes or any(k <= 0 or k % 2 == 0 for k in self.aspp_kernel_sizes):
            raise ConfigError(
                f"BiRefNet: aspp_kernel_sizes must be odd positive sizes, got {self.aspp_kernel_sizes}"
            )
        if not 0 <= self.context_levels <= NUM_STAGES - 1:
            raise ConfigError(
                f"BiRefNet: context_levels must be between 0 and {NUM_STAGES - 1}, got {self.context_levels}"
            )

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Swin output channels of stages 1-4 (one backbone pass)."""
        return tuple(self.embed_dim * 2**stage for stage in range(NUM_STAGES))

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of x1..x4 after the "cat" multi-scale input (two backbone passes)."""
        return tuple(2 * channels for channels in self.stage_channels)

    @property
    def context_channels(self) -> int:
        """Channels of the context features concatenated onto x4 before the squeeze block."""
        return sum(self.feature_channels[NUM_STAGES - 1 - self.context_levels : NUM_STAGES - 1])

    @classmethod
    def tiny(cls) -> Self:
        """A small config with every part of the released wiring, for tests."""
        return cls(
            embed_dim=8,
            depths=(2, 2, 2, 2),
            num_heads=(1, 2, 2, 4),
            window_size=4,
            decoder_channels=8,
            aspp_channels=8,
            input_block_channels=8,
            gradient_channels=4,
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping of field names; unknown keys are refused, by name.

        Raises:
            ConfigError: an unknown key or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"BiRefNet config has unknown keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**dict(values))
