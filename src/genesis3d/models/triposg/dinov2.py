"""DINOv2 ViT (TripoSG's image encoder, ``image_encoder_dinov2/``), in plain PyTorch.

The checkpoint uses the transformers 4.x names (``attention.attention.query``,
``attention.output.dense``, ...), which transformers 5 no longer holds in memory, so the
encoder is written here with those names and loads the file unchanged.

Forward (spec 2.3): 14x14 patch embedding, CLS token, position table resized bicubically
from its 37x37 grid to the input's patch grid (``size=`` resize in float32, as current
transformers does; older releases used a slightly different scale factor, which moves the
tokens a little), pre-norm blocks with LayerScale, final LayerNorm. TripoSG conditions on
every output token: (B, 1 + (H/14)(W/14), hidden), 257 x 1024 at 224 px.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from genesis3d.errors import ConfigError
from genesis3d.nn.attention import attention
from genesis3d.nn.compute_dtype import Conv2d, Linear

#: transformers' bookkeeping keys of a ``config.json``; they do not shape the network.
_BOOKKEEPING = frozenset(
    {
        "architectures", "attention_probs_dropout_prob", "chunk_size_feed_forward", "drop_path_rate",
        "dtype", "hidden_dropout_prob", "id2label", "initializer_range", "is_encoder_decoder",
        "label2id", "model_type", "out_features", "out_indices", "output_attentions",
        "output_hidden_states", "problem_type", "reshape_hidden_states", "return_dict",
        "stage_names", "torch_dtype", "transformers_version", "use_mask_token", "apply_layernorm",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Dinov2Config:
    """The architecture keys of a transformers ``Dinov2Config`` file (defaults: ViT-L/14)."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: float = 4.0
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    image_size: int = 518
    patch_size: int = 14
    num_channels: int = 3
    qkv_bias: bool = True
    layerscale_value: float = 1.0
    use_swiglu_ffn: bool = False
    intermediate_size: int | None = None

    def __post_init__(self) -> None:
        if self.use_swiglu_ffn:
            raise ConfigError("DINOv2: use_swiglu_ffn (the giant model) is not supported")
        if self.hidden_act != "gelu":
            raise ConfigError(f"DINOv2: hidden_act must be 'gelu', got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"DINOv2: hidden_size {self.hidden_size} is not divisible by "
                f"{self.num_attention_heads} heads"
            )

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Read a transformers ``config.json`` dict; refuses keys that are neither."""
        known = {name for name in cls.__dataclass_fields__}
        args = {
            key: value
            for key, value in config.items()
            if not key.startswith("_") and key not in _BOOKKEEPING
        }
        unknown = sorted(set(args) - known)
        if unknown:
            raise ConfigError(
                f"DINOv2 config has unknown keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**args)


class PatchEmbeddings(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.projection = Conv2d(
            config.num_channels, config.hidden_size, config.patch_size, config.patch_size
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(pixels).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        side = config.image_size // config.patch_size
        self.patch_size = config.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # Present in the checkpoint, used only for masked-image training.
        self.mask_token = nn.Parameter(torch.zeros(1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, side * side + 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)

    def positions(self, rows: int, cols: int) -> torch.Tensor:
        """(1, 1 + rows cols, hidden): the table resized bicubically in float32."""
        table = self.position_embeddings
        side = math.isqrt(table.shape[1] - 1)
        if rows == cols == side:
            return table
        grid = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
        grid = grid.to(table.dtype).permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([table[:, :1], grid], dim=1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        rows, cols = pixels.shape[2] // self.patch_size, pixels.shape[3] // self.patch_size
        patches = self.patch_embeddings(pixels.to(self.patch_embeddings.projection.weight.dtype))
        tokens = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        return tokens + self.positions(rows, cols)


class SelfAttentionProjections(nn.Module):
    """``query``, ``key``, ``value`` (with bias)."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        width = config.hidden_size
        self.query = Linear(width, width, bias=config.qkv_bias)
        self.key = Linear(width, width, bias=config.qkv_bias)
        self.value = Linear(width, width, bias=config.qkv_bias)


class AttentionOutput(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)


class Attention(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.attention = SelfAttentionProjections(config)
        self.output = AttentionOutput(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, -1).transpose(1, 2)

        p = self.attention
        out = attention(split(p.query(x)), split(p.key(x)), split(p.value(x)))
        return self.output.dense(out.transpose(1, 2).reshape(batch, length, width))


class LayerScale(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.full((config.hidden_size,), config.layerscale_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class MLP(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.fc1 = Linear(config.hidden_size, config.mlp_hidden)
        self.fc2 = Linear(config.mlp_hidden, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config)
        self.layer_scale1 = LayerScale(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.layer_scale2 = LayerScale(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class Encoder(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList([Layer(config) for _ in range(config.num_hidden_layers)])


class Dinov2Model(nn.Module):
    """DINOv2 backbone; :meth:`forward` returns ``last_hidden_state`` (after ``layernorm``)."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) normalised -> tokens (B, 1 + (H/p)(W/p), hidden)."""
        hidden = self.embeddings(pixels)
        for layer in self.encoder.layer:
            hidden = layer(hidden)
        return self.layernorm(hidden)
