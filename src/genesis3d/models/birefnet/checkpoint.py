"""Load the official BiRefNet safetensors checkpoint strictly."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from genesis3d.errors import ConfigError, WeightsError
from genesis3d.models.birefnet.config import NUM_STAGES, BiRefNetConfig
from genesis3d.models.birefnet.model import BiRefNet
from genesis3d.weights.loading import load_into, load_safetensors, read_header

logger = logging.getLogger(__name__)


def _shape(header: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    if key not in header:
        raise WeightsError(f"{source} lacks {key}; it is not a BiRefNet (Swin v1) checkpoint")
    return tuple(header[key].shape)


def _count(header: Mapping[str, Any], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for key in header if (m := pattern.match(key))}
    return max(found) + 1 if found else 0


def config_from_header(header: Mapping[str, Any], source: str = "checkpoint") -> BiRefNetConfig:
    """The sizes of a BiRefNet checkpoint, read off its tensor shapes.

    Args:
        header: key -> anything with a ``.shape`` (a safetensors header or a state dict).
        source: a name for messages.

    Returns:
        The config whose module has exactly these shapes (the strict load then checks
        every key).

    Raises:
        WeightsError: the file lacks a key every BiRefNet has, or its sizes fit no config.
    """
    embed = _shape(header, "bb.patch_embed.proj.weight", source)[0]
    depths = tuple(_count(header, f"bb.layers.{i}.blocks.") for i in range(NUM_STAGES))
    tables = [
        _shape(header, f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table", source)
        for i in range(NUM_STAGES)
    ]
    window = (math.isqrt(tables[0][0]) + 1) // 2
    hidden = _shape(header, "bb.layers.0.blocks.0.mlp.fc1.weight", source)[0]
    att = "decoder.decoder_block4.dec_att"
    kernels = tuple(
        _shape(header, f"{att}.aspp_deforms.{i}.atrous_conv.regular_conv.weight", source)[-1]
        for i in range(_count(header, f"{att}.aspp_deforms."))
    )
    squeeze_in = _shape(header, "squeeze_module.0.conv_in.weight", source)[1]
    features = [2 * embed * 2**stage for stage in range(NUM_STAGES)]
    context = [sum(features[NUM_STAGES - 1 - n : NUM_STAGES - 1]) for n in range(NUM_STAGES)]
    if squeeze_in - features[-1] not in context:
        raise WeightsError(
            f"{source}: the squeeze block takes {squeeze_in} channels, which fits no number of "
            "context levels; it is not a BiRefNet Swin v1 checkpoint"
        )
    try:
        return BiRefNetConfig(
            embed_dim=embed,
            depths=depths,
            num_heads=tuple(table[1] for table in tables),
            window_size=window,
            mlp_ratio=hidden / embed,
            decoder_channels=_shape(header, "decoder.decoder_block4.conv_in.weight", source)[0],
            aspp_channels=_shape(header, f"{att}.aspp1.atrous_conv.regular_conv.weight", source)[0],
            aspp_kernel_sizes=kernels,
            input_block_channels=_shape(header, "decoder.ipt_blk5.conv1.weight", source)[0],
            gradient_channels=_shape(header, "decoder.gdt_convs_4.0.weight", source)[0],
            context_levels=context.index(squeeze_in - features[-1]),
        )
    except ConfigError as error:
        raise WeightsError(f"{source} has sizes no BiRefNet has: {error}") from error


def load_birefnet(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    config: BiRefNetConfig | None = None,
) -> BiRefNet:
    """Build BiRefNet without initialising it and load a checkpoint into it strictly.

    The module is built on the meta device and the checkpoint's tensors are assigned to it,
    so no random initialisation is ever computed.

    Args:
        path: the ``.safetensors`` file (official key names, e.g. ``birefnet.safetensors``).
        device: where the weights go.
        dtype: floating-point dtype of the weights (integer buffers keep theirs).
        config: sizes of the network; default: read off the file (the released Swin-L
            model for the official file).

    Returns:
        The model in eval mode.

    Raises:
        WeightsError: a missing or invalid file, or one whose keys or shapes do not fit the
            model (every missing, unexpected and mis-shaped key is named in one message).
        ConfigError: ``dtype`` is not a floating-point dtype.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    header = read_header(path)  # a clear error for a missing or malformed file first
    config = config or config_from_header(header, str(path))
    with torch.device("meta"):
        model = BiRefNet(config)
    state = load_safetensors(path, dtype=dtype, device=device)
    load_into(model, state, source=str(path), assign=True)
    logger.info("loaded BiRefNet from %s (%s, %s)", path, device, dtype)
    return model.eval()
