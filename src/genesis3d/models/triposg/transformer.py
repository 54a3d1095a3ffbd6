"""``TripoSGDiTModel``: the rectified-flow transformer of TripoSG (spec 2.4).

A U-ViT-style stack over the latent set (2048 tokens x 64 channels at release):

* the timestep becomes a token: sinusoid [sin, cos] of width ``width`` (float32), then
  ``time_proj`` (Linear -> exact GELU -> Linear), prepended as token 0;
* ``num_layers`` blocks of self-attention, cross-attention to the DINOv2 tokens and MLP,
  with q/k RMSNorm and the interleaved head layout (:mod:`.layers`); blocks before the
  middle push their output, blocks after it pop one (LIFO) as a long skip;
* ``norm_out`` and ``proj_out``, the time token dropped.

No positional encoding: the latent is a set. Released config: width 2048, 16 heads,
21 layers, 64 latent channels, cross-attention width 1024 (1,439,556,160 parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from genesis3d.models.triposg.config import TripoSGDiTConfig
from genesis3d.models.triposg.layers import TripoSGBlock
from genesis3d.nn.compute_dtype import Linear
from genesis3d.nn.embeddings import timestep_embedding


class TimestepProjection(nn.Module):
    """``linear_1`` -> exact GELU -> ``linear_2`` (diffusers ``TimestepEmbedding``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.linear_1 = Linear(in_dim, hidden)
        self.linear_2 = Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(nn.functional.gelu(self.linear_1(x)))


class TripoSGDiTModel(nn.Module):
    """The TripoSG flow transformer; predicts the velocity v ~ x_0 - noise."""

    def __init__(self, config: TripoSGDiTConfig) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.time_proj = TimestepProjection(width, 4 * width, width)
        self.proj_in = Linear(config.in_channels, width)
        middle = config.num_layers // 2
        self.blocks = nn.ModuleList(
            [
                TripoSGBlock(
                    width,
                    config.num_attention_heads,
                    context_dim=config.cross_attention_dim,
                    qk_norm=True,
                    skip=layer > middle,
                )
                for layer in range(config.num_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = Linear(width, config.in_channels)

    def forward(
        self, latents: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """Velocity of the latents.

        Args:
            latents: (B, N, in_channels).
            timestep: (B,) model time 1000 * sigma (any real dtype; the sinusoid is float32).
            context: (B, S, cross_attention_dim) condition tokens (zeros: unconditional).

        Returns:
            (B, N, in_channels) in the latents' dtype.
        """
        tokens = latents.shape[1]
        time = timestep_embedding(timestep, self.config.width, sin_first=True)
        time = self.time_proj(time.to(latents.dtype)).unsqueeze(1)
        hidden = torch.cat([time, self.proj_in(latents)], dim=1)
        middle = self.config.num_layers // 2
        skips: list[torch.Tensor] = []
        for layer, block in enumerate(self.blocks):
            skip = skips.pop() if layer > middle else None
            hidden = block(hidden, context, skip=skip)
            if layer < middle:
                skips.append(hidden)
        return self.proj_out(self.norm_out(hidden)[:, -tokens:])
