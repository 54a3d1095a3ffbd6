"""Configs of the TripoSplat components read off their checkpoint files.

The released layout has weights only (no config files), and its shapes determine every
architecture size, so a configuration is inferred from the tensor shapes in the header
(no tensor data is read): the released files give the official configs, and smaller
checkpoints in the same layout (tests, distilled variants) load the same way. The one size
the shapes do not carry, the latent length, is the released 8192.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from genesis3d.errors import WeightsError
from genesis3d.models.triposplat.config import (
    FlowModelConfig,
    GaussianDecoderConfig,
    OctreeDecoderConfig,
)
from genesis3d.weights.loading import TensorInfo

Header = Mapping[str, TensorInfo]

OCTREE_PREFIX = "octree."
GAUSSIAN_PREFIX = "gs."


def _shape(header: Header, key: str, source: str) -> tuple[int, ...]:
    if key not in header:
        raise WeightsError(
            f"{source} lacks {key}; it is not a TripoSplat checkpoint of the official layout"
        )
    return header[key].shape


def _count(header: Header, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for key in header if (m := pattern.match(key))}
    return max(indices) + 1 if indices else 0


def flow_model_config(
    header: Header, *, source: str = "flow model file", q_token_length: int = 8192
) -> FlowModelConfig:
    """The :class:`FlowModelConfig` of a ``diffusion_models/triposplat_*.safetensors`` header."""
    channels, in_channels = _shape(header, "input_layer.weight", source)
    heads, head_dim = _shape(header, "blocks.0.attn.q_norm.gamma", source)
    hidden = _shape(header, "blocks.0.mlp.mlp.0.weight", source)[0]
    return FlowModelConfig(
        q_token_length=q_token_length,
        in_channels=in_channels,
        cam_channels=_shape(header, "cam_out_layer.weight", source)[0],
        out_channels=_shape(header, "out_layer.weight", source)[0],
        model_channels=channels,
        cond_channels=_shape(header, "cond_embedder.weight", source)[1],
        cond2_channels=_shape(header, "cond_embedder2.weight", source)[1],
        num_refiner_blocks=_count(header, "noise_refiner."),
        num_blocks=_count(header, "blocks."),
        num_heads=heads,
        num_head_channels=head_dim,
        mlp_ratio=hidden / channels,
    )


def octree_decoder_config(header: Header, *, source: str = "decoder file") -> OctreeDecoderConfig:
    """The octree decoder's config from the decoder file header (keys ``octree.*``)."""
    p = OCTREE_PREFIX
    channels = _shape(header, p + "in_proj.weight", source)[0]
    heads = _shape(header, p + "blocks.0.cross_attn.q_rms_norm.gamma", source)[0]
    return OctreeDecoderConfig(
        model_channels=channels,
        cond_channels=_shape(header, p + "blocks.0.cross_attn.to_kv.weight", source)[1],
        num_blocks=_count(header, p + "blocks."),
        num_heads=heads,
        mlp_ratio=_shape(header, p + "blocks.0.mlp.mlp.0.weight", source)[0] / channels,
    )


def gaussian_decoder_config(
    header: Header, *, source: str = "decoder file"
) -> GaussianDecoderConfig:
    """The Gaussian decoder's config from the decoder file header (keys ``gs.*``)."""
    p = GAUSSIAN_PREFIX
    channels = _shape(header, p + "in_proj.weight", source)[0]
    features = _shape(header, p + "out_proj.weight", source)[0]
    if features != GaussianDecoderConfig().representation_config.features_per_point:
        raise WeightsError(
            f"{source}: {p}out_proj gives {features} features per point; the released "
            "representation (32 Gaussians x 15) needs 480"
        )
    return GaussianDecoderConfig(
        model_channels=channels,
        cond_channels=_shape(header, p + "blocks.0.cross_attn.to_kv.weight", source)[1],
        num_blocks=_count(header, p + "blocks."),
        num_heads=_shape(header, p + "blocks.0.self_attn.q_rms_norm.gamma", source)[0],
        mlp_ratio=_shape(header, p + "blocks.0.mlp.mlp.0.weight", source)[0] / channels,
    )
