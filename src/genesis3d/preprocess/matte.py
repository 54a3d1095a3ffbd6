"""Background removal: an alpha matte for the object in a picture.

Backends:

- ``alpha``: the picture's own matte.
- ``auto``: a flat or near-flat backdrop, cut out by classical image processing (no
  weights). The backdrop colour and its noise are measured on the picture's border; the
  backdrop is the near-backdrop region connected to the border, plus enclosed regions of
  the same flat colour large enough to be real holes (a ring, a handle); edge pixels get a
  soft alpha from the compositing equation C = a F + (1 - a) B.
- ``rembg``: a learned matting model through the optional ``rembg`` package.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from genesis3d.errors import ConfigError, InputError, MissingDependencyError, WeightsError
from genesis3d.preprocess.load import Picture

logger = logging.getLogger(__name__)

BackgroundBackend = Literal["alpha", "auto", "rembg"]
BACKGROUND_BACKENDS: tuple[str, ...] = ("alpha", "auto", "rembg")


def choose_background_backend(picture: Picture, backend: str | None) -> str:
    """The backend to use: the one asked for, else ``alpha`` when the picture has a real matte, else ``auto``.

    Raises:
        ConfigError: for an unknown backend name.
    """
    if backend is None:
        return "alpha" if picture.has_real_alpha else "auto"
    key = backend.strip().lower()
    if key not in BACKGROUND_BACKENDS:
        raise ConfigError(
            f"background backend must be one of {', '.join(BACKGROUND_BACKENDS)}, got {backend!r}"
        )
    return key


def remove_background(picture: Picture, backend: str | None = None, **options) -> np.ndarray:
    """Cut the object out of a picture.

    Args:
        picture: the loaded picture.
        backend: "alpha", "auto", "rembg", or None to choose (see :func:`choose_background_backend`).
        **options: backend options (``rembg``: ``model``).

    Returns:
        (H, W, 4) uint8 RGBA with the object's matte in the alpha channel.

    Raises:
        InputError: no matte to use, a backdrop that is not flat, or no object found.
        MissingDependencyError, WeightsError: for the learned backend.
    """
    key = choose_background_backend(picture, backend)
    if key == "alpha":
        if not picture.has_real_alpha:
            raise InputError(
                f"{picture.source} has no transparent pixels to use as a matte; use --bg auto for a plain backdrop or --bg rembg"
            )
        alpha = picture.alpha
    elif key == "auto":
        alpha = flat_backdrop_matte(picture.rgb, source=picture.source)
    else:
        alpha = rembg_matte(picture, **options)
    _check_coverage(alpha, picture.source)
    return np.dstack([picture.rgb, alpha])


def _check_coverage(alpha: np.ndarray, source: str) -> None:
    covered = float((alpha >= 128).mean())
    if covered == 0.0:
        raise InputError(
            f"no object found in {source}: the matte is empty; check the picture or choose another --bg backend"
        )
    if covered > 0.995:
        raise InputError(
            f"no object found in {source}: the matte covers the whole picture; choose another --bg backend or pass a picture with alpha"
        )


def _border(rgb: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate(
        [
            rgb[:width].reshape(-1, 3),
            rgb[-width:].reshape(-1, 3),
            rgb[:, :width].reshape(-1, 3),
            rgb[:, -width:].reshape(-1, 3),
        ]
    )


def flat_backdrop_matte(rgb: np.ndarray, *, source: str = "<picture>") -> np.ndarray:
    """Alpha matte of an object photographed on a flat or near-flat backdrop.

    Args:
        rgb: (H, W, 3) uint8 picture.
        source: name for messages.

    Returns:
        (H, W) uint8 alpha, 255 on the object, 0 on the backdrop, soft at the edges.

    Raises:
        InputError: when the picture's border is not a flat colour.
    """
    from scipy import ndimage

    height, width = rgb.shape[:2]
    colors = rgb.astype(np.float32)
    band = max(2, min(height, width) // 100)
    border = _border(colors, band)
    backdrop = np.median(border, axis=0)
    border_distance = np.linalg.norm(border - backdrop, axis=1)
    flat = border_distance < 24.0
    if flat.mean() < 0.6:
        raise InputError(
            f"the border of {source} is not a flat backdrop (only {flat.mean():.0%} of it is near one colour); use --bg rembg, or pass a picture with alpha"
        )
    noise = float(np.percentile(border_distance[flat], 99))
    low = max(2.5 * noise, 8.0)  # below: backdrop
    distance = np.linalg.norm(colors - backdrop, axis=2)
    near = distance <= low

    labels, count = ndimage.label(near)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge_labels[edge_labels > 0])
    # Enclosed flat regions are holes (a ring, a handle) when they are large and as flat as the backdrop.
    min_hole = max(64, int(0.0005 * height * width))
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    with np.errstate(invalid="ignore", divide="ignore"):  # scipy also divides for the empty label 0
        spread = ndimage.standard_deviation(distance, labels, index=np.arange(1, count + 1))
    for index in np.flatnonzero((sizes >= min_hole) & (spread <= max(noise, 2.0))) + 1:
        if index not in edge_labels:
            background |= labels == index

    foreground = ~background
    foreground = ndimage.binary_opening(foreground, iterations=1)
    object_labels, object_count = ndimage.label(foreground)
    if object_count == 0:
        return np.zeros((height, width), np.uint8)
    object_sizes = ndimage.sum_labels(
        np.ones_like(object_labels), object_labels, index=np.arange(1, object_count + 1)
    )
    keep = np.flatnonzero(object_sizes >= max(32, 0.002 * object_sizes.max())) + 1
    foreground = np.isin(object_labels, keep)
    small_holes = ndimage.binary_fill_holes(foreground) & ~foreground
    hole_labels, _ = ndimage.label(small_holes)
    if hole_labels.max():
        hole_sizes = ndimage.sum_labels(
            np.ones_like(hole_labels), hole_labels, index=np.arange(1, hole_labels.max() + 1)
        )
        foreground |= np.isin(hole_labels, np.flatnonzero(hole_sizes < min_hole) + 1)
    return _soft_edges(foreground, distance, low)


def _soft_edges(foreground: np.ndarray, distance: np.ndarray, low: float) -> np.ndarray:
    """Alpha from the compositing equation in a thin band inside the object's edge.

    For a pixel C = a F + (1 - a) B, |C - B| = a |F - B|; F is taken from the nearest pixel
    deeper inside the object.
    """
    from scipy import ndimage

    interior = ndimage.binary_erosion(foreground, iterations=3)
    alpha = foreground.astype(np.float32)
    if not interior.any():
        return (alpha * 255).astype(np.uint8)
    band = foreground & ~interior
    _, (rows, cols) = ndimage.distance_transform_edt(~interior, return_indices=True)
    reference = distance[rows, cols]
    ratio = np.clip((distance - low * 0.5) / np.maximum(reference - low * 0.5, 1e-3), 0.0, 1.0)
    alpha[band] = ratio[band]
    return np.round(alpha * 255.0).astype(np.uint8)


def rembg_matte(picture: Picture, *, model: str = "birefnet-general") -> np.ndarray:
    """Alpha matte from a learned model through the optional ``rembg`` package.

    Args:
        picture: the loaded picture.
        model: a rembg session name ("birefnet-general", "isnet-general-use", "u2net", ...).

    Returns:
        (H, W) uint8 alpha.

    Raises:
        MissingDependencyError: rembg is not installed.
        WeightsError: the model's weights could not be downloaded or loaded.
    """
    try:
        import rembg
    except ImportError as error:
        raise MissingDependencyError(
            "background removal with --bg rembg", "rembg", 'pip install "genesis3d[rembg]"'
        ) from error
    try:
        session = rembg.new_session(model)
    except (OSError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"the rembg model {model!r} could not be loaded ({type(error).__name__}: {error}); rembg downloads its weights on first use "
            "into ~/.u2net (or $U2NET_HOME), so run it once on a machine connected to the internet"
        ) from error
    from PIL import Image

    cut = rembg.remove(Image.fromarray(picture.rgb), session=session, only_mask=True)
    return np.asarray(cut.convert("L"))
