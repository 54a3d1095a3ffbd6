"""``TripoSGVAEModel``: the SDF autoencoder of TripoSG (spec 2.5).

The latent is a set of tokens (2048 x 64 at release) with no spatial layout and no scale or
shift. The decoder turns it into a field f(p) over [-1.005, 1.005]^3, **positive inside**,
surface at f = 0 (the network's head predicts the opposite sign; :meth:`decode` negates it).

Decoding splits into a per-shape part and a per-point part. The per-shape part, ``post_quant``
and the ``num_layers_decoder`` self-attention blocks (the "trunk", about 1.1 TFLOP at
release), plus the key/value projections of the query block, is computed once by
:meth:`TripoSGVAEModel.field`; every batch of query points then costs only the Fourier
embedding, one cross-attention block and the head. (Upstream recomputes the trunk on every
``decode`` call.)

The encoder (point cloud + normals -> posterior) is here for mesh -> latent round trips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genesis3d.errors import InputError
from genesis3d.models.triposg.config import TripoSGVAEConfig
from genesis3d.models.triposg.layers import TripoSGBlock
from genesis3d.nn.compute_dtype import Linear


def fourier_embedding(
    points: torch.Tensor, frequencies: int, *, include_pi: bool = False
) -> torch.Tensor:
    """[p, sin(p_i 2^j), cos(p_i 2^j)] with the angles coordinate-major, float32 products.

    Args:
        points: (..., C) coordinates.
        frequencies: F; the factors are 2^0 .. 2^(F-1) (times pi when ``include_pi``).

    Returns:
        (..., C (1 + 2F)) in the dtype of ``points``.
    """
    factors = 2.0 ** torch.arange(frequencies, dtype=torch.float32, device=points.device)
    if include_pi:
        factors = factors * torch.pi
    angles = (points[..., None] * factors.to(points.dtype)).flatten(-2)
    return torch.cat([points, angles.sin(), angles.cos()], dim=-1)


class TripoSGEncoder(nn.Module):
    """Query tokens attend to the whole point cloud, then self-attention blocks."""

    def __init__(self, in_channels: int, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.proj_in = Linear(in_channels, dim)
        self.blocks = nn.ModuleList(
            [TripoSGBlock(dim, heads, self_attention=False, context_dim=dim, norm_cross=True)]
            + [TripoSGBlock(dim, heads) for _ in range(layers)]
        )
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """queries (B, T, C_in), points (B, Np, C_in) -> (B, T, dim)."""
        hidden = self.proj_in(queries)
        context = self.proj_in(points)
        hidden = self.blocks[0](hidden, context)
        for block in self.blocks[1:]:
            hidden = block(hidden)
        return self.norm_out(hidden)


class TripoSGDecoder(nn.Module):
    """Self-attention trunk over the latent tokens, then one cross-attention query block."""

    def __init__(self, in_channels: int, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [TripoSGBlock(dim, heads) for _ in range(layers)]
            + [TripoSGBlock(dim, heads, self_attention=False, context_dim=dim, norm_cross=True)]
        )
        self.proj_query = Linear(in_channels, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.proj_out = Linear(dim, 1)

    def trunk(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) after post_quant -> (B, T, dim), the upstream ``kv_cache``."""
        for block in self.blocks[:-1]:
            hidden = block(hidden)
        return hidden

    def query(
        self, embedded: torch.Tensor, key_value: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Raw head output (negative inside) for embedded points (B, M, in_channels) -> (B, M, 1)."""
        hidden = self.blocks[-1](self.proj_query(embedded), key_value=key_value)
        return self.proj_out(self.norm_out(hidden))


@dataclass
class SDFField:
    """The decoder's field for fixed latents: trunk and key/value projections computed once.

    Attributes:
        vae: the model.
        kv_cache: (B, T, width_decoder) trunk output.
        key_value: per-head keys and values of the query block, (B, H, T, d) each.
    """

    vae: TripoSGVAEModel
    kv_cache: torch.Tensor
    key_value: tuple[torch.Tensor, torch.Tensor]

    @property
    def batch(self) -> int:
        return self.kv_cache.shape[0]

    def bytes_per_point(self) -> int:
        """Rough activation memory of one query point: attention scores and MLP activations.

        Used to size query batches from a memory budget (about 100 kB per point at release
        in float32: 8 heads x 2048 scores, the 4096-wide MLP, a few 1024-wide buffers).
        """
        block = self.vae.decoder.blocks[-1]
        width = self.kv_cache.shape[-1]
        scores = block.attn2.heads * self.kv_cache.shape[1]
        return self.batch * self.kv_cache.element_size() * (2 * scores + 12 * width)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """f at points (B, M, 3) (any float dtype) -> (B, M, 1) in the model dtype, > 0 inside."""
        config = self.vae.config
        points = points.to(self.kv_cache.device, self.kv_cache.dtype)
        embedded = fourier_embedding(
            points, config.embed_frequency, include_pi=config.embed_include_pi
        )
        return -self.vae.decoder.query(embedded, self.key_value)


class TripoSGVAEModel(nn.Module):
    """TripoSG's VAE: ``encoder``, ``quant``, ``post_quant``, ``decoder`` (official key names)."""

    def __init__(self, config: TripoSGVAEConfig) -> None:
        super().__init__()
        self.config = config
        embed = config.embed_dim
        heads = config.num_attention_heads
        self.encoder = TripoSGEncoder(
            embed + config.in_channels, config.width_encoder, heads, config.num_layers_encoder
        )
        self.decoder = TripoSGDecoder(embed, config.width_decoder, heads, config.num_layers_decoder)
        self.quant = Linear(config.width_encoder, 2 * config.latent_channels)
        self.post_quant = Linear(config.latent_channels, config.width_decoder)

    # ------------------------------------------------------------------ decoding

    def field(self, latents: torch.Tensor) -> SDFField:
        """The SDF of latents (B, T, latent_channels), ready to be queried many times."""
        kv_cache = self.decoder.trunk(self.post_quant(latents))
        key_value = self.decoder.blocks[-1].attn2.key_value(kv_cache)
        return SDFField(self, kv_cache, key_value)

    def decode(
        self, latents: torch.Tensor, points: torch.Tensor, *, chunk_size: int = 50_000
    ) -> torch.Tensor:
        """f at points, > 0 inside.

        Args:
            latents: (B, T, latent_channels).
            points: (B, M, 3) in [-1.005, 1.005]^3.
            chunk_size: points per query batch (chunking does not change the result).

        Returns:
            (B, M, 1) in the model dtype.
        """
        field = self.field(latents)
        return torch.cat([field(part) for part in points.split(chunk_size, dim=1)], dim=1)

    # ------------------------------------------------------------------ encoding

    def encode(self, points: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Posterior parameters of a surface point cloud.

        Args:
            points: (B, Np, 3 + 3) xyz + unit normals, all points (keys and values).
            queries: (B, T, 3 + 3) the subsample that becomes the T latent tokens
                (:func:`sample_query_points`).

        Returns:
            (B, T, 2 latent_channels): [mean | logvar], logvar not yet clamped.
        """
        config = self.config
        position = config.in_channels

        def embed(x: torch.Tensor) -> torch.Tensor:
            encoded = fourier_embedding(
                x[..., :position], config.embed_frequency, include_pi=config.embed_include_pi
            )
            return torch.cat([encoded, x[..., position:]], dim=-1)

        return self.quant(self.encoder(embed(queries), embed(points)))


def posterior(parameters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, logvar) of :meth:`TripoSGVAEModel.encode`'s output, logvar clamped to [-30, 20]."""
    mean, logvar = parameters.chunk(2, dim=-1)
    return mean, logvar.clamp(-30.0, 20.0)


def farthest_point_sampling(xyz: torch.Tensor, count: int) -> torch.Tensor:
    """Deterministic farthest point sampling, starting at point 0.

    Args:
        xyz: (N, 3) points.
        count: how many to pick (<= N).

    Returns:
        (count,) int64 indices, in pick order (squared distances; the first index on ties).
    """
    if not 0 < count <= xyz.shape[0]:
        raise InputError(f"farthest point sampling needs 0 < count <= {xyz.shape[0]}, got {count}")
    chosen = torch.empty(count, dtype=torch.int64, device=xyz.device)
    distance = torch.full((xyz.shape[0],), float("inf"), dtype=xyz.dtype, device=xyz.device)
    current = 0
    for index in range(count):
        chosen[index] = current
        distance = torch.minimum(distance, (xyz - xyz[current]).pow(2).sum(-1))
        current = int(distance.argmax())
    return chosen


def sample_query_points(
    cloud: torch.Tensor, num_tokens: int, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's query subsample, the official way: random 4T points, then FPS to T.

    Args:
        cloud: (B, Np, 6) xyz + normals.
        num_tokens: T.
        seed: seed of numpy's ``default_rng`` for the random preselection.

    Returns:
        (queries (B, T, 6), the preselection's indices (4T,) int64).
    """
    batch, count, channels = cloud.shape
    wanted = 4 * num_tokens
    rng = np.random.default_rng(seed)
    chosen = torch.from_numpy(rng.choice(count, wanted, replace=wanted > count)).to(cloud.device)
    selected = cloud[:, chosen]
    picks = [
        selected[b, farthest_point_sampling(selected[b, :, :3], num_tokens)] for b in range(batch)
    ]
    return torch.stack(picks).reshape(batch, num_tokens, channels), chosen
