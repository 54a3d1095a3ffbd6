"""TRELLIS.2's call parameters, pipeline types and picture preparation (spec 1.2, 1.9)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from genesis3d.errors import ConfigError, InputError
from genesis3d.geometry.uv import check_texture_size
from genesis3d.models.trellis2 import components as parts
from genesis3d.models.trellis2.structure import MAX_CASCADE_TOKENS
from genesis3d.nn.dinov3 import IMAGENET_MEAN, IMAGENET_STD
from genesis3d.pipelines.base import flag_param

PipelineType = Literal["512", "1024", "1024_cascade", "1536_cascade"]
#: type -> (structure grid, output resolution, whether the shape is sampled in two passes)
PIPELINE_TYPES: dict[str, tuple[int, int, bool]] = {
    "512": (32, 512, False),
    "1024": (64, 1024, False),
    "1024_cascade": (32, 1024, True),
    "1536_cascade": (32, 1536, True),
}
#: what ``--resolution`` means, as in the official web demo
RESOLUTION_TYPES = {512: "512", 1024: "1024_cascade", 1536: "1536_cascade"}
MAX_SIDE = 1024
ALPHA_THRESHOLD = 0.8 * 255


@dataclass(frozen=True)
class Trellis2Params:
    """Parameters of a TRELLIS.2 call (defaults: the official pipeline and web demo).

    Attributes:
        pipeline_type: "512", "1024", "1024_cascade" or "1536_cascade" (``resolution``
            512, 1024 and 1536 choose "512", "1024_cascade" and "1536_cascade").
        steps: Euler steps of every sampler (None: pipeline.json's, 12 each).
        faces: decimate the mesh to at most this many faces.
        texture_size: side of the PBR textures, a power of two from 256 to 8192.
        max_tokens: the 1536 cascade lowers its resolution until the latent holds fewer
            voxels than this.
        remesh: rebuild the decoded surface as one closed, outward-wound shell
            (:func:`genesis3d.geometry.remesh.remesh_closed`) before the export, instead of
            the official thickened double shell; the material is then single-sided.
        remesh_resolution: cells along the longest side of the remesh grid (64 to 1024).
    """

    pipeline_type: PipelineType = "1024_cascade"
    steps: int | None = None
    faces: int = 500_000
    texture_size: int = 2048
    max_tokens: int = MAX_CASCADE_TOKENS
    remesh: bool = False
    remesh_resolution: int = 512

    def __post_init__(self) -> None:
        if self.pipeline_type not in PIPELINE_TYPES:
            raise ConfigError(
                f"pipeline_type must be one of {', '.join(PIPELINE_TYPES)}, got {self.pipeline_type!r}"
            )
        if self.steps is not None and not 1 <= self.steps <= 200:
            raise ConfigError(f"steps must be between 1 and 200, got {self.steps}")
        if self.faces < 4:
            raise ConfigError(f"faces must be at least 4 (e.g. 500000), got {self.faces}")
        check_texture_size(self.texture_size)
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be positive, got {self.max_tokens}")
        if not 64 <= self.remesh_resolution <= 1024:
            raise ConfigError(
                f"remesh_resolution must be between 64 and 1024 cells, got {self.remesh_resolution}"
            )

    @property
    def resolution(self) -> int:
        return PIPELINE_TYPES[self.pipeline_type][1]

    @classmethod
    def parse(cls, params: dict[str, Any]) -> Trellis2Params:
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in params.items():
            if key == "resolution":
                number = _whole("resolution", value)
                if number not in RESOLUTION_TYPES:
                    raise ConfigError(f"resolution must be 512, 1024 or 1536, got {value!r}")
                values["pipeline_type"] = RESOLUTION_TYPES[number]
            elif key not in names:
                raise ConfigError(
                    f"trellis2 has no parameter {key!r}; it takes resolution, {', '.join(sorted(names))}"
                )
            elif key == "pipeline_type":
                values[key] = str(value)
            elif key == "steps" and value in (None, "none"):
                values[key] = None
            elif key == "remesh":
                values[key] = flag_param(key, value)
            else:
                values[key] = _whole(key, value)
        return cls(**values)


def _whole(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from error
    if not math.isfinite(number) or number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


# ----------------------------------------------------------------------- step 1: picture


def crop_to_object(rgba: np.ndarray) -> np.ndarray:
    """The official crop (spec 1.2 steps 4-5) of a matted picture.

    The box is the square of side max(w, h) (no margin) centred on the pixels with alpha
    > 204; parts outside the picture are transparent black. Colour is premultiplied by
    alpha with truncation.

    Args:
        rgba: (H, W, 4) uint8 straight alpha.

    Returns:
        (S, S, 4) uint8: premultiplied colour and the alpha.

    Raises:
        InputError: no pixel has alpha above 204.
    """
    ys, xs = np.nonzero(rgba[..., 3] > ALPHA_THRESHOLD)
    if len(xs) == 0:
        raise InputError(
            "the picture has no object (no pixel with alpha above 80%); check the picture "
            "or choose another --bg backend"
        )
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) // 2
    cropped = Image.fromarray(rgba, "RGBA").crop((cx - half, cy - half, cx + half, cy + half))
    pixels = np.asarray(cropped).astype(np.float32) / 255
    rgb = (pixels[..., :3] * pixels[..., 3:4] * 255).astype(np.uint8)
    return np.dstack([rgb, np.asarray(cropped)[..., 3]])


def shrink(rgba: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Lanczos resize so the longest side is at most ``max_side`` (sizes truncated)."""
    height, width = rgba.shape[:2]
    if max(height, width) <= max_side:
        return rgba
    scale = max_side / max(height, width)
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    mode = "RGBA" if rgba.shape[2] == 4 else "RGB"
    return np.asarray(Image.fromarray(rgba, mode).resize(size, Image.Resampling.LANCZOS))


def birefnet_matte(model: torch.nn.Module, rgb: np.ndarray, size: int = 1024) -> np.ndarray:
    """Alpha of an RGB picture as the official TRELLIS.2 wrapper computes it (spec 1.2 step 3).

    PIL bilinear resize to ``size`` x ``size``, ImageNet normalisation, the sigmoid of the
    model's final logits truncated to uint8, then PIL's default (bicubic) resize back. (The
    TripoSplat and TripoSG wrappers resize with tensors instead; see
    :func:`genesis3d.models.birefnet.predict_alpha`.)

    Args:
        model: a BiRefNet in eval mode.
        rgb: (H, W, 3) uint8.

    Returns:
        (H, W) uint8 alpha.
    """
    weight = next(model.parameters())
    image = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = model(((pixels - mean) / std).to(weight.device, weight.dtype))
    matte = (torch.sigmoid(logits.float())[0, 0] * 255).to(torch.uint8).cpu().numpy()
    height, width = rgb.shape[:2]
    return np.asarray(Image.fromarray(matte, "L").resize((width, height), Image.Resampling.BICUBIC))


def dinov3_pixels(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(S, S, 3) uint8 -> (1, 3, size, size) float32, Lanczos-resized, ImageNet-normalised."""
    image = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def networks(pipeline_type: str) -> tuple[str, ...]:
    """The networks a pipeline type runs."""
    _, _, cascade = PIPELINE_TYPES[pipeline_type]
    names = [
        "sparse_structure_flow_model",
        "sparse_structure_decoder",
        "shape_slat_decoder",
        "tex_slat_decoder",
        parts.IMAGE_ENCODER,
    ]
    if pipeline_type == "512":
        names += ["shape_slat_flow_model_512", "tex_slat_flow_model_512"]
    elif cascade:
        names += [
            "shape_slat_flow_model_512",
            "shape_slat_flow_model_1024",
            "tex_slat_flow_model_1024",
        ]
    else:
        names += ["shape_slat_flow_model_1024", "tex_slat_flow_model_1024"]
    return tuple(names)


__all__ = [
    "PIPELINE_TYPES",
    "RESOLUTION_TYPES",
    "Trellis2Params",
    "birefnet_matte",
    "crop_to_object",
    "dinov3_pixels",
    "networks",
    "shrink",
]
