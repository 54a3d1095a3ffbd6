"""Framing rules: crop to the object, pad, centre and resize, one function per rule.

Every function takes and returns uint8 arrays: ``rgba`` is (H, W, 4) with straight alpha,
``alpha`` is (H, W). Families compose these the way their spec says (for example
TripoSplat: erode the matte 3x3, square crop 1.2x the object, premultiplied Lanczos
resize, composite on black; TripoSG: crop with a 10% margin on white).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from genesis3d.errors import InputError
from genesis3d.preprocess.load import Picture
from genesis3d.preprocess.matte import remove_background

Resample = Literal["lanczos", "bicubic", "bilinear", "nearest"]


def object_bbox(alpha: np.ndarray, threshold: int = 128) -> tuple[int, int, int, int]:
    """Bounding box of the pixels whose alpha reaches ``threshold``.

    Args:
        alpha: (H, W) uint8.
        threshold: lowest alpha that counts as the object.

    Returns:
        (x0, y0, x1, y1) with x1, y1 exclusive.

    Raises:
        InputError: when no pixel reaches the threshold.
    """
    rows = np.flatnonzero((alpha >= threshold).any(axis=1))
    cols = np.flatnonzero((alpha >= threshold).any(axis=0))
    if rows.size == 0:
        raise InputError(
            "no object found: the matte is empty; check the picture or choose another --bg backend"
        )
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def erode_alpha(alpha: np.ndarray, size: int = 3) -> np.ndarray:
    """Grey-level erosion (minimum filter) of a matte with a ``size`` x ``size`` square.

    Args:
        alpha: (H, W) uint8.
        size: odd window size.

    Returns:
        (H, W) uint8.
    """
    from scipy import ndimage

    return ndimage.minimum_filter(alpha, size=size, mode="nearest")


def crop_box(rgba: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop to ``box`` = (x0, y0, x1, y1); parts outside the picture become transparent black.

    Args:
        rgba: (H, W, 4) uint8.
        box: integer corners, x1 and y1 exclusive; may extend past the picture.

    Returns:
        (y1 - y0, x1 - x0, 4) uint8.
    """
    x0, y0, x1, y1 = box
    height, width = rgba.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgba[sy0:sy1, sx0:sx1]
    return out


def crop_to_object(
    rgba: np.ndarray, margin: float = 0.0, *, square: bool = False, threshold: int = 128
) -> np.ndarray:
    """Crop around the object with a margin, optionally to a square centred on it.

    Args:
        rgba: (H, W, 4) uint8.
        margin: extra space on each side as a fraction of the object's longest side.
        square: make the crop square, centred on the object's box.
        threshold: alpha that counts as the object.

    Returns:
        The cropped (h, w, 4) uint8 picture (transparent where it leaves the original).
    """
    x0, y0, x1, y1 = object_bbox(rgba[..., 3], threshold)
    longest = max(x1 - x0, y1 - y0)
    pad = int(round(margin * longest))
    if square:
        side = longest + 2 * pad
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        left, top = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
        return crop_box(rgba, (left, top, left + side, top + side))
    return crop_box(rgba, (x0 - pad, y0 - pad, x1 + pad, y1 + pad))


def crop_square_scaled(rgba: np.ndarray, scale: float = 1.2, threshold: int = 128) -> np.ndarray:
    """Square crop whose side is ``scale`` times the object's longest side, centred on its box.

    Args:
        rgba: (H, W, 4) uint8.
        scale: side of the square relative to the object's longest side (>= 1).
        threshold: alpha that counts as the object.
    """
    return crop_to_object(rgba, margin=(scale - 1.0) / 2.0, square=True, threshold=threshold)


def pad_to_square(rgba: np.ndarray) -> np.ndarray:
    """Pad with transparent pixels to a square, keeping the picture centred.

    Args:
        rgba: (H, W, 4) uint8.

    Returns:
        (S, S, 4) uint8 with S = max(H, W).
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
    """Resize with the colour premultiplied by alpha, so no backdrop colour bleeds into the edges.

    Args:
        rgba: (H, W, 4) uint8.
        size: (height, width) of the result.
        method: resampling filter.
        premultiplied: resample colour x alpha and divide after (recommended); False
            resamples straight colour.

    Returns:
        (height, width, 4) uint8.
    """
    from PIL import Image

    filters = {
        "lanczos": Image.Resampling.LANCZOS,
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }
    height, width = size
    values = rgba.astype(np.float32) / 255.0
    if premultiplied:
        values[..., :3] *= values[..., 3:]
    channels = [
        np.asarray(Image.fromarray(values[..., c], "F").resize((width, height), filters[method]))
        for c in range(4)
    ]
    out = np.clip(np.stack(channels, axis=-1), 0.0, 1.0)
    if premultiplied:
        alpha = out[..., 3:]
        out[..., :3] = np.where(
            alpha > 1e-6, np.clip(out[..., :3] / np.maximum(alpha, 1e-6), 0.0, 1.0), 0.0
        )
    return np.round(out * 255.0).astype(np.uint8)


def composite(rgba: np.ndarray, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Composite over a solid colour.

    Args:
        rgba: (H, W, 4) uint8.
        background: RGB colour of the backdrop.

    Returns:
        (H, W, 3) uint8.
    """
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * alpha + np.asarray(background, np.float32) * (
        1.0 - alpha
    )
    return np.round(out).astype(np.uint8)


def fit_object(
    rgba: np.ndarray, size: int, fill: float = 0.9, method: Resample = "lanczos"
) -> np.ndarray:
    """Centre the object in a ``size`` x ``size`` square so its longest side fills ``fill`` of it.

    Args:
        rgba: (H, W, 4) uint8.
        size: side of the result in pixels.
        fill: fraction of the side taken by the object's longest side, in (0, 1].
        method: resampling filter.
    """
    square = crop_square_scaled(rgba, scale=1.0 / fill)
    return resize_rgba(square, (size, size), method)


def prepare_silhouette(
    picture: Picture, backend: str | None = None, max_side: int = 1024, margin: float = 0.02
) -> np.ndarray:
    """Cut the object out, crop to it with a small margin, and cap its size (never upscaled).

    Args:
        picture: the loaded picture.
        backend: background removal backend (see :func:`remove_background`).
        max_side: longest side of the result in pixels.
        margin: space kept around the object, as a fraction of its longest side.

    Returns:
        (h, w, 4) uint8 with max(h, w) <= max_side.
    """
    cropped = crop_to_object(remove_background(picture, backend), margin=margin)
    height, width = cropped.shape[:2]
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        cropped = resize_rgba(
            cropped, (max(1, round(height * scale)), max(1, round(width * scale)))
        )
    return cropped
