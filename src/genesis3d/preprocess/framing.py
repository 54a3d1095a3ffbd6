"""Framing rules: find the object, crop, pad, centre, resize and composite; one function per rule.

Arrays in, arrays out: ``rgba`` is (H, W, 4) uint8 with straight (not premultiplied)
alpha, ``alpha`` is (H, W) uint8, a ``bbox`` is ``(x0, y0, x1, y1)`` in pixels with
``x1``/``y1`` exclusive (so ``rgba[y0:y1, x0:x1]`` is the object). Anything a crop takes
from outside the picture is transparent black, as PIL's ``crop`` does.

Families compose these the way their spec says, for example:

- TripoSplat: ``erode_alpha(a, 3)`` -> ``object_bbox(a, 0)`` -> ``crop_square(rgba, box,
  scale=1.2)`` -> ``resize_rgba(..., (1024, 1024), "lanczos")`` -> ``composite(..., (0, 0, 0))``.
- TRELLIS.2: ``object_bbox(a, 204)`` -> ``crop_square(rgba, box)`` -> ``composite`` on black.
- TripoSG: ``object_bbox`` -> ``crop_square(rgba, box, margin=0.1)`` -> ``composite`` on white.

Box arithmetic here is the natural one for exclusive boxes (centre ``(x0 + x1) / 2``, side
from ``max(x1 - x0, y1 - y0)``); where a parity test needs an upstream's exact integer
box, compute that box in the family's pipeline and cut it with :func:`crop_box`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from genesis3d.errors import ConfigError, InputError
from genesis3d.preprocess.load import Picture
from genesis3d.preprocess.matte import remove_background

Resample = Literal["lanczos", "bicubic", "bilinear", "nearest"]
RESAMPLE_METHODS: tuple[str, ...] = ("lanczos", "bicubic", "bilinear", "nearest")

BBox = tuple[int, int, int, int]


def object_bbox(alpha: np.ndarray, threshold: int = 0) -> BBox:
    """Bounding box of the pixels whose alpha is strictly above ``threshold``.

    Args:
        alpha: (H, W) uint8 matte.
        threshold: pixels with ``alpha > threshold`` are the object (0: any visible pixel;
            127: the binarised matte; 204: TRELLIS.2's 0.8 rule).

    Returns:
        (x0, y0, x1, y1) with x1, y1 exclusive.

    Raises:
        InputError: when no pixel is above the threshold.
    """
    inside = np.asarray(alpha) > threshold
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        raise InputError(
            f"no object found: no pixel of the matte is above {threshold}; check the picture "
            "or choose another --bg backend"
        )
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def erode_alpha(alpha: np.ndarray, size: int = 3) -> np.ndarray:
    """Grey-level erosion: each pixel becomes the minimum of its ``size`` x ``size`` window.

    Same as PIL's ``ImageFilter.MinFilter(size)`` (edges replicate the border pixel), so
    a matte shrinks by ``size // 2`` pixels and the backdrop-tinted edge goes.

    Args:
        alpha: (H, W) uint8.
        size: odd window side; 1 returns a copy.

    Returns:
        (H, W) uint8.

    Raises:
        ConfigError: for an even or non-positive size.
    """
    from scipy import ndimage

    if size < 1 or size % 2 == 0:
        raise ConfigError(f"erode size must be a positive odd number, got {size}")
    return ndimage.minimum_filter(np.asarray(alpha, np.uint8), size=size, mode="nearest")


def crop_box(rgba: np.ndarray, box: BBox) -> np.ndarray:
    """Cut ``box`` out of the picture; what lies outside the picture becomes transparent black.

    Args:
        rgba: (H, W, 4) uint8.
        box: (x0, y0, x1, y1) integers, x1 and y1 exclusive, may extend past the picture.

    Returns:
        (y1 - y0, x1 - x0, 4) uint8.

    Raises:
        ConfigError: for an empty box.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ConfigError(f"a crop box must have x1 > x0 and y1 > y0, got {box}")
    height, width = rgba.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, rgba.shape[2]), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgba[sy0:sy1, sx0:sx1]
    return out


def square_box(bbox: BBox, *, scale: float = 1.0, margin: float = 0.0) -> BBox:
    """The square box centred on ``bbox`` whose side is ``scale`` x its longest side, plus margins.

    Rule: ``L = max(x1 - x0, y1 - y0)``; side ``S = round(L * scale) + 2 * round(L * margin)``;
    the square's top-left corner is ``floor(centre - S / 2)`` with centre ``((x0 + x1) / 2,
    (y0 + y1) / 2)``. ``scale=1.2`` and ``margin=0.1`` describe the same square up to
    rounding.

    Args:
        bbox: (x0, y0, x1, y1), exclusive ends.
        scale: side relative to the object's longest side, > 0.
        margin: extra space on each side, as a fraction of the longest side, >= 0.

    Returns:
        (x0, y0, x1, y1) of the square, exclusive ends; it may leave the picture.

    Raises:
        ConfigError: for a scale <= 0 or a negative margin.
    """
    if scale <= 0 or margin < 0:
        raise ConfigError(f"scale must be > 0 and margin >= 0, got scale={scale}, margin={margin}")
    x0, y0, x1, y1 = bbox
    longest = max(x1 - x0, y1 - y0)
    side = max(1, round(longest * scale) + 2 * round(longest * margin))
    left = math.floor((x0 + x1) / 2 - side / 2)
    top = math.floor((y0 + y1) / 2 - side / 2)
    return left, top, left + side, top + side


def crop_square(
    rgba: np.ndarray, bbox: BBox, *, scale: float = 1.0, margin: float = 0.0
) -> np.ndarray:
    """Square crop centred on the object's box (see :func:`square_box` for the rule).

    Args:
        rgba: (H, W, 4) uint8.
        bbox: the object's (x0, y0, x1, y1), e.g. from :func:`object_bbox`.
        scale: side relative to the object's longest side (TripoSplat: 1.2).
        margin: extra space per side as a fraction of the longest side (TripoSG: 0.1).

    Returns:
        (S, S, 4) uint8, transparent where the square leaves the picture.
    """
    return crop_box(rgba, square_box(bbox, scale=scale, margin=margin))


def crop_to_object(rgba: np.ndarray, margin: float = 0.0, *, threshold: int = 0) -> np.ndarray:
    """Rectangular crop around the object, with the same margin on every side.

    Rule: the box of :func:`object_bbox` grown by ``round(margin * max(w, h))`` pixels on
    each side, where w, h are the object's width and height.

    Args:
        rgba: (H, W, 4) uint8.
        margin: space per side as a fraction of the object's longest side, >= 0.
        threshold: alpha above which a pixel is the object.

    Returns:
        (h + 2p, w + 2p, 4) uint8, transparent where it leaves the picture.
    """
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    x0, y0, x1, y1 = object_bbox(rgba[..., 3], threshold)
    pad = round(margin * max(x1 - x0, y1 - y0))
    return crop_box(rgba, (x0 - pad, y0 - pad, x1 + pad, y1 + pad))


def pad_to_square(rgba: np.ndarray) -> np.ndarray:
    """Pad with transparent black to a square, the picture centred (extra pixel right/bottom).

    Args:
        rgba: (H, W, 4) uint8.

    Returns:
        (S, S, 4) uint8 with S = max(H, W); the input sits at rows ``(S - H) // 2`` onward
        and columns ``(S - W) // 2`` onward.
    """
    height, width = rgba.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return crop_box(rgba, (-left, -top, side - left, side - top))


def resize_rgba(
    rgba: np.ndarray,
    size: tuple[int, int],
    method: Resample = "lanczos",
    *,
    premultiplied: bool = True,
) -> np.ndarray:
    """Resize, resampling colour premultiplied by alpha so the transparent colour never bleeds in.

    Rule: colour x alpha and alpha are resampled in float32 with Pillow's filter, then colour
    is divided by the new alpha (0 where alpha is 0). Matches Pillow's own RGBA resize
    (which premultiplies internally) up to 8-bit rounding.

    Args:
        rgba: (H, W, 4) uint8.
        size: (height, width) of the result.
        method: "lanczos", "bicubic", "bilinear" or "nearest".
        premultiplied: False resamples straight colour (transparent pixels' colour then
            bleeds into the edges; only for comparison).

    Returns:
        (height, width, 4) uint8.

    Raises:
        ConfigError: for an unknown method or a size below 1.
    """
    from PIL import Image

    if method not in RESAMPLE_METHODS:
        raise ConfigError(
            f"resize method must be one of {', '.join(RESAMPLE_METHODS)}, got {method!r}"
        )
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ConfigError(f"resize size must be at least (1, 1), got {size}")
    resample = getattr(Image.Resampling, method.upper())
    values = rgba.astype(np.float32) / 255.0
    if premultiplied:
        values[..., :3] *= values[..., 3:]
    channels = [
        np.asarray(Image.fromarray(values[..., c], "F").resize((width, height), resample))
        for c in range(4)
    ]
    out = np.clip(np.stack(channels, axis=-1), 0.0, 1.0)
    if premultiplied:
        alpha = out[..., 3:]
        safe = np.maximum(alpha, 1e-6)
        out[..., :3] = np.where(alpha > 1e-6, np.clip(out[..., :3] / safe, 0.0, 1.0), 0.0)
    return np.round(out * 255.0).astype(np.uint8)


def composite(rgba: np.ndarray, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Composite over a solid colour: ``C = a F + (1 - a) B`` with a = alpha / 255, rounded.

    Args:
        rgba: (H, W, 4) uint8, straight alpha.
        background: RGB colour of the backdrop, 0..255 each.

    Returns:
        (H, W, 3) uint8.
    """
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    backdrop = np.asarray(background, np.float32)
    out = rgba[..., :3].astype(np.float32) * alpha + backdrop * (1.0 - alpha)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def fit_object(
    rgba: np.ndarray,
    size: int,
    fill_fraction: float = 0.9,
    *,
    method: Resample = "lanczos",
    threshold: int = 0,
) -> np.ndarray:
    """Centre the object in a ``size`` x ``size`` square, its longest side ``fill_fraction`` of it.

    Rule: square crop of side ``L / fill_fraction`` centred on the object's box (L its
    longest side), then a premultiplied resize to ``size``; so the object spans
    ``round(fill_fraction * size)`` pixels, give or take one for rounding.

    Args:
        rgba: (H, W, 4) uint8.
        size: side of the result in pixels.
        fill_fraction: in (0, 1]; e.g. 0.85 as in TripoSR's ``foreground_ratio``.
        method: resampling filter.
        threshold: alpha above which a pixel is the object.

    Returns:
        (size, size, 4) uint8.

    Raises:
        ConfigError: fill_fraction outside (0, 1].
        InputError: empty matte.
    """
    if not 0.0 < fill_fraction <= 1.0:
        raise ConfigError(f"fill_fraction must be in (0, 1], got {fill_fraction}")
    bbox = object_bbox(rgba[..., 3], threshold)
    longest = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    side = max(1, round(longest / fill_fraction))
    square = crop_square(rgba, bbox, scale=side / longest)
    return resize_rgba(square, (size, size), method)


def prepare_silhouette(
    picture: Picture,
    backend: str | None = None,
    max_side: int = 1024,
    *,
    margin: float = 0.02,
    threshold: int = 127,
) -> np.ndarray:
    """Cut the object out, crop to it with a small margin, and cap its size (never upscaled).

    Rule: :func:`remove_background` -> :func:`crop_to_object` with ``margin`` -> if the
    longest side exceeds ``max_side``, premultiplied Lanczos downscale so it equals
    ``max_side`` (aspect kept, sides rounded); smaller crops keep their pixels.

    Args:
        picture: the loaded picture.
        backend: background removal backend (see :func:`remove_background`); None chooses.
        max_side: cap on the longest side of the result, >= 1.
        margin: space kept around the object per side, as a fraction of its longest side.
        threshold: alpha above which a pixel counts as the object for the crop (127: the
            binarised matte, so a faint fringe does not widen the crop).

    Returns:
        (h, w, 4) uint8 straight-alpha RGBA with max(h, w) <= max_side.

    Raises:
        InputError, ConfigError, MissingDependencyError, WeightsError: from
            :func:`remove_background` and the crop.
    """
    if max_side < 1:
        raise ConfigError(f"max_side must be >= 1, got {max_side}")
    cropped = crop_to_object(remove_background(picture, backend), margin, threshold=threshold)
    height, width = cropped.shape[:2]
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        cropped = resize_rgba(
            cropped, (max(1, round(height * scale)), max(1, round(width * scale))), "lanczos"
        )
    return cropped
