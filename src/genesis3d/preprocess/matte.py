"""Background removal: an alpha matte for the object in a picture.

Backends:

- ``alpha``: the picture's own matte.
- ``auto``: a flat or near-flat backdrop, cut out by classical image processing, no
  weights. Steps (one function each): :func:`fit_backdrop` models the backdrop colour from
  the picture's border (a smooth quadratic field, so a mild gradient or vignette still
  counts as flat) and measures its noise; :func:`segment_object` labels as backdrop the
  near-backdrop pixels (CIELAB distance) connected to the border plus enclosed flat regions
  big enough to be real holes (a ring, a handle), keeps object regions only where they
  hold a clearly non-backdrop pixel (hysteresis), drops specks and fills pinholes;
  :func:`soft_edges` gives the edge pixels a fractional alpha from the compositing
  equation C = a F + (1 - a) B and removes the backdrop tint from their colour.
- ``rembg``: a learned matting model through the optional ``rembg`` package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from genesis3d.errors import ConfigError, InputError, MissingDependencyError, WeightsError
from genesis3d.preprocess.load import Picture

logger = logging.getLogger(__name__)

BackgroundBackend = Literal["alpha", "auto", "rembg"]
BACKGROUND_BACKENDS: tuple[str, ...] = ("alpha", "auto", "rembg")

#: rembg session used when no ``model`` option is given: BiRefNet, the matting model the
#: TripoSplat and TRELLIS.2 pipelines use, in rembg's general-purpose variant (MIT).
DEFAULT_REMBG_MODEL = "birefnet-general"

_BACKEND_OPTIONS: dict[str, frozenset[str]] = {
    "alpha": frozenset(),
    "auto": frozenset(),
    "rembg": frozenset({"model"}),
}

# A matte covering more than this fraction of the picture found no backdrop at all.
_MAX_COVERAGE = 0.995


def choose_background_backend(picture: Picture, backend: str | None) -> str:
    """The backend to use: the one asked for, else ``alpha`` with a real matte, else ``auto``.

    Args:
        picture: the loaded picture.
        backend: a name of ``BACKGROUND_BACKENDS`` (any case), or None to choose.

    Returns:
        "alpha", "auto" or "rembg".

    Raises:
        ConfigError: for an unknown backend name.
    """
    if backend is None:
        return "alpha" if picture.has_real_alpha else "auto"
    key = str(backend).strip().lower()
    if key not in BACKGROUND_BACKENDS:
        raise ConfigError(
            f"background backend must be one of {', '.join(BACKGROUND_BACKENDS)}, got {backend!r}"
        )
    return key


def remove_background(picture: Picture, backend: str | None = None, **options: Any) -> np.ndarray:
    """Cut the object out of a picture.

    Args:
        picture: the loaded picture.
        backend: "alpha", "auto", "rembg", or None to choose (see
            :func:`choose_background_backend`). ``auto`` reads the colour channels only.
        **options: backend options; ``rembg`` takes ``model`` (a rembg session name,
            default ``DEFAULT_REMBG_MODEL``); the others take none.

    Returns:
        (H, W, 4) uint8 straight-alpha RGBA. Colour is the picture's, except that ``auto``
        removes the backdrop tint from semi-transparent edge pixels.

    Raises:
        ConfigError: unknown backend or option.
        InputError: no matte to use, a backdrop that is not flat, or no object found.
        MissingDependencyError, WeightsError: for the learned backend.
    """
    key = choose_background_backend(picture, backend)
    unknown = set(options) - _BACKEND_OPTIONS[key]
    if unknown:
        takes = ", ".join(sorted(_BACKEND_OPTIONS[key])) or "no options"
        raise ConfigError(
            f"background backend {key!r} has no option {', '.join(sorted(unknown))}; it takes {takes}"
        )
    rgb = picture.rgb
    if key == "alpha":
        if not picture.has_real_alpha:
            raise InputError(
                f"{picture.source} has no transparent pixels to use as a matte; use --bg auto "
                "for an object on a plain backdrop, or --bg rembg"
            )
        alpha = picture.alpha
    elif key == "auto":
        rgb, alpha = flat_backdrop_matte(picture.rgb, source=picture.source)
    else:
        alpha = rembg_matte(picture, **options)
    _check_coverage(alpha, picture.source, key)
    return np.dstack([rgb, alpha])


def _check_coverage(alpha: np.ndarray, source: str, backend: str) -> None:
    covered = float(np.count_nonzero(alpha >= 128)) / alpha.size
    if covered == 0.0:
        raise InputError(
            f"no object found in {source}: the {backend} matte is empty; check the picture, "
            "or choose another --bg backend"
        )
    if covered > _MAX_COVERAGE:
        raise InputError(
            f"no object found in {source}: the {backend} matte covers {covered:.1%} of the "
            "picture, leaving no backdrop; pass a picture with alpha or try --bg rembg"
        )


# --------------------------------------------------------------------------- auto backend


@dataclass(frozen=True)
class Backdrop:
    """The backdrop of a picture, as measured on its border.

    Attributes:
        rgb: (H, W, 3) float32 backdrop colour at every pixel (sRGB, 0..255).
        lab: (H, W, 3) float32 the same in CIELAB.
        noise: CIELAB distance that 99% of the flat border pixels stay within.
        flat_fraction: fraction of the border that matches the backdrop model.
    """

    rgb: np.ndarray
    lab: np.ndarray
    noise: float
    flat_fraction: float


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours.

    Args:
        rgb: (..., 3) sRGB in 0..255, any real dtype.

    Returns:
        (..., 3) float32 L*, a*, b*.
    """
    values = np.asarray(rgb, np.float32) / 255.0
    linear = np.where(values > 0.04045, ((values + 0.055) / 1.055) ** 2.4, values / 12.92)
    matrix = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ],
        np.float32,
    )
    xyz = linear.astype(np.float32) @ matrix.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    lab = np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )
    return lab.astype(np.float32)


def _border_mask(height: int, width: int, band: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[:band] = mask[-band:] = True
    mask[:, :band] = mask[:, -band:] = True
    return mask


def _quadratic_terms(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    y = rows.astype(np.float32) / max(height - 1, 1) * 2.0 - 1.0
    x = cols.astype(np.float32) / max(width - 1, 1) * 2.0 - 1.0
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


# Border pixels further than this (CIELAB) from the backdrop model are not backdrop.
_FLAT_TOLERANCE = 10.0
# The backdrop must cover at least this much of the border (the object may touch the rest).
_MIN_FLAT_BORDER = 0.5
# Above this border noise (CIELAB, 99th percentile) the backdrop is textured, not flat.
_MAX_NOISE = 6.0


def fit_backdrop(rgb: np.ndarray, *, source: str = "<picture>") -> Backdrop:
    """Model the backdrop as a smooth colour field fitted to the picture's border.

    Rule: a band of ``max(2, min(H, W) // 100)`` pixels along the four edges; start from
    the median colour, then twice: keep the border pixels within 10 CIELAB units of the
    model and fit each sRGB channel by least squares to a quadratic in (x, y). Half the
    border must match, and the matching pixels must stay within 6 units (99%).

    Args:
        rgb: (H, W, 3) uint8 picture.
        source: name for messages.

    Returns:
        The :class:`Backdrop`.

    Raises:
        InputError: when the border is not a flat (or smoothly shaded) backdrop.
    """
    height, width = rgb.shape[:2]
    band = max(2, min(height, width) // 100)
    rows, cols = np.nonzero(_border_mask(height, width, band))
    colours = rgb[rows, cols].astype(np.float32)
    lab = srgb_to_lab(colours)
    terms = _quadratic_terms(rows, cols, height, width)
    model = np.broadcast_to(np.median(colours, axis=0), colours.shape)
    coefficients = np.zeros((6, 3), np.float32)
    coefficients[0] = model[0]
    for _ in range(2):
        residual = np.linalg.norm(lab - srgb_to_lab(model), axis=1)
        inliers = residual < _FLAT_TOLERANCE
        if inliers.sum() < 6 * 4:
            break
        coefficients = np.linalg.lstsq(terms[inliers], colours[inliers], rcond=None)[0]
        model = terms @ coefficients
    residual = np.linalg.norm(lab - srgb_to_lab(model), axis=1)
    inliers = residual < _FLAT_TOLERANCE
    flat_fraction = float(inliers.mean())
    noise = float(np.percentile(residual[inliers], 99)) if inliers.any() else float("inf")
    if flat_fraction < _MIN_FLAT_BORDER or noise > _MAX_NOISE:
        raise InputError(
            f"the backdrop of {source} is not flat: only {flat_fraction:.0%} of the picture's "
            f"border is close to one smoothly varying colour (noise {noise:.1f} CIELAB units, "
            f"at most {_MAX_NOISE:g} allowed); --bg auto needs a plain backdrop, so use --bg "
            "rembg, or pass a picture with alpha (RGBA PNG/WebP)"
        )
    grid_rows, grid_cols = np.mgrid[:height, :width]
    field = _quadratic_terms(grid_rows.ravel(), grid_cols.ravel(), height, width) @ coefficients
    field = np.clip(field, 0.0, 255.0).reshape(height, width, 3).astype(np.float32)
    return Backdrop(field, srgb_to_lab(field), noise, flat_fraction)


def _component_sizes(labels: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=count + 1)


def _flat_holes(
    distance: np.ndarray,
    labels: np.ndarray,
    count: int,
    noise: float,
    high: float,
    min_hole: int,
    edge_labels: np.ndarray,
) -> np.ndarray:
    """Which enclosed near-backdrop regions are holes: (count + 1,) bool over the labels.

    A hole shows the backdrop itself, so its colour is as even as the border's, and the
    object's edge around it is sharp: the ring of pixels 1-2 beyond it is mostly far from
    the backdrop colour (above ``high``). An object part that merely comes close to the
    backdrop colour (a blown highlight on white) fades into its surroundings instead.
    """
    from scipy import ndimage

    flat = np.zeros(count + 1, bool)
    sizes = _component_sizes(labels, count)
    candidates = np.flatnonzero(sizes >= min_hole)
    candidates = candidates[~np.isin(candidates, edge_labels)]
    if candidates.size == 0:
        return flat
    mean = ndimage.mean(distance, labels, candidates)
    spread = ndimage.standard_deviation(distance, labels, candidates)
    even = (spread <= max(noise, 1.0)) & (mean <= max(noise, 1.5))
    candidates = candidates[even]
    if candidates.size == 0:
        return flat
    chosen = np.zeros(count + 1, bool)
    chosen[candidates] = True
    grown = ndimage.grey_dilation(np.where(chosen[labels], labels, 0), size=(5, 5))
    ring = (grown > 0) & (labels == 0)
    ring_size = np.bincount(grown[ring], minlength=count + 1)
    ring_sharp = np.bincount(grown[ring & (distance > high)], minlength=count + 1)
    sharp = ring_sharp[candidates] >= 0.5 * np.maximum(ring_size[candidates], 1)
    flat[candidates] = sharp & (ring_size[candidates] > 0)
    return flat


def segment_object(distance: np.ndarray, noise: float) -> tuple[np.ndarray, float]:
    """Binary object mask from each pixel's CIELAB distance to the backdrop.

    Rule: ``low = max(2.5 noise, 3)``, ``high = max(2 low, 12)``. Backdrop = pixels with
    distance <= low connected (4-neighbours) to the border, plus enclosed such regions of
    at least ``max(24, H W / 20000)`` pixels whose distances are as flat as the border's
    and whose surrounding ring is sharp (holes, see :func:`_flat_holes`). Of the rest,
    8-connected regions are kept when they hold a pixel above ``high`` (hysteresis) and at
    least ``max(16, H W / 100000)`` pixels (specks go); then enclosed gaps holding no hole
    pixel are filled.

    Args:
        distance: (H, W) float32 CIELAB distance to the backdrop model.
        noise: the backdrop's noise level, as :func:`fit_backdrop` measured it.

    Returns:
        (mask, low): (H, W) bool object mask, and the backdrop threshold used.
    """
    from scipy import ndimage

    height, width = distance.shape
    low = max(2.5 * noise, 3.0)
    high = max(2.0 * low, 12.0)
    min_hole = max(24, height * width // 20_000)
    min_speck = max(16, height * width // 100_000)

    near = distance <= low
    labels, count = ndimage.label(near)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    is_backdrop = np.zeros(count + 1, bool)
    is_backdrop[edge] = True
    is_backdrop |= _flat_holes(distance, labels, count, noise, high, min_hole, edge)
    is_backdrop[0] = False
    holes = is_backdrop[labels]
    foreground = ~holes

    # Hysteresis: an object region must hold at least one clearly non-backdrop pixel.
    eight = np.ones((3, 3), bool)
    objects, count = ndimage.label(foreground, structure=eight)
    if count == 0:
        return foreground, low
    strong = np.zeros(count + 1, bool)
    strong[np.unique(objects[distance > high])] = True
    keep = strong & (_component_sizes(objects, count) >= min_speck)
    keep[0] = False
    foreground = keep[objects]

    # Enclosed gaps that hold no hole pixel are object (pinholes, dropped faint specks).
    gaps, count = ndimage.label(ndimage.binary_fill_holes(foreground) & ~foreground)
    if count:
        fill = np.ones(count + 1, bool)
        fill[np.unique(gaps[holes & (gaps > 0)])] = False
        fill[0] = False
        foreground |= fill[gaps]
    return foreground, low


def soft_edges(
    rgb: np.ndarray, foreground: np.ndarray, backdrop_rgb: np.ndarray, width: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional alpha and backdrop-free colour on a thin band along the object's edge.

    Rule: F is the colour of the nearest object pixel at least ``width + 1`` pixels inside
    the edge, B the backdrop model; for the band pixels (object pixels within ``width`` of
    the edge, and backdrop pixels touching the object) ``a = (C - B)·(F - B) / |F - B|²``
    clipped to [0, 1], the least-squares solution of C = a F + (1 - a) B. Where F and B are
    closer than 20 sRGB units the estimate is unreliable and the binary mask is kept. The
    colour of a semi-transparent pixel becomes ``B + (C - B) / a`` (clipped) for a >= 0.25,
    else F. Other pixels keep the binary mask (0 or 255) and their colour.

    Args:
        rgb: (H, W, 3) uint8 picture.
        foreground: (H, W) bool object mask.
        backdrop_rgb: (H, W, 3) float32 backdrop model.
        width: band width in pixels inside the edge.

    Returns:
        (rgb, alpha): (H, W, 3) uint8 decontaminated colour and (H, W) uint8 alpha.
    """
    from scipy import ndimage

    alpha = foreground.astype(np.float32)
    interior = ndimage.binary_erosion(foreground, iterations=width + 1)
    if not interior.any():
        return rgb, (alpha * 255).astype(np.uint8)
    inner_band = foreground & ~ndimage.binary_erosion(foreground, iterations=width)
    outer_band = ndimage.binary_dilation(foreground) & ~foreground
    band = inner_band | outer_band
    # Work on the band's bounding box only: the distance transform is the costly step.
    rows, cols = np.nonzero(band)
    pad = 4 * (width + 2)
    top, bottom = max(rows.min() - pad, 0), min(rows.max() + pad + 1, rgb.shape[0])
    left, right = max(cols.min() - pad, 0), min(cols.max() + pad + 1, rgb.shape[1])
    window = (slice(top, bottom), slice(left, right))
    _, (near_rows, near_cols) = ndimage.distance_transform_edt(
        ~interior[window], return_indices=True
    )
    sub_band = band[window]
    colour = rgb[window].astype(np.float32)[sub_band]
    object_colour = rgb[window].astype(np.float32)[near_rows[sub_band], near_cols[sub_band]]
    backdrop = backdrop_rgb[window][sub_band]
    contrast = object_colour - backdrop
    contrast_sq = np.einsum("ij,ij->i", contrast, contrast)
    estimate = np.einsum("ij,ij->i", colour - backdrop, contrast) / np.maximum(contrast_sq, 1e-6)
    reliable = contrast_sq >= 20.0**2
    binary = foreground[window][sub_band].astype(np.float32)
    # Quantised now, so 'partial' below means partial in the 8-bit result.
    value = np.round(np.where(reliable, np.clip(estimate, 0.0, 1.0), binary) * 255.0) / 255.0
    sub_alpha = alpha[window]
    sub_alpha[sub_band] = value
    alpha[window] = sub_alpha

    unmixed = backdrop + (colour - backdrop) / np.maximum(value, 0.25)[:, None]
    clean = np.where((value >= 0.25)[:, None], np.clip(unmixed, 0.0, 255.0), object_colour)
    partial = (value > 0.0) & (value < 1.0)
    out = rgb.copy()
    sub_rgb = out[window]
    band_rgb = sub_rgb[sub_band]
    band_rgb[partial] = np.round(clean[partial]).astype(np.uint8)
    sub_rgb[sub_band] = band_rgb
    return out, np.round(alpha * 255.0).astype(np.uint8)


def flat_backdrop_matte(
    rgb: np.ndarray, *, source: str = "<picture>"
) -> tuple[np.ndarray, np.ndarray]:
    """Cut out an object photographed on a flat or near-flat backdrop, without weights.

    Driver of :func:`fit_backdrop`, :func:`segment_object` and :func:`soft_edges`.

    Args:
        rgb: (H, W, 3) uint8 picture.
        source: name for messages.

    Returns:
        (rgb, alpha): (H, W, 3) uint8 colour with the backdrop tint removed from the edge
        pixels, and (H, W) uint8 alpha (255 object, 0 backdrop, fractional at the edges).

    Raises:
        InputError: when the picture's border is not a flat backdrop.
    """
    backdrop = fit_backdrop(rgb, source=source)
    distance = np.linalg.norm(srgb_to_lab(rgb) - backdrop.lab, axis=2)
    foreground, low = segment_object(distance, backdrop.noise)
    logger.debug(
        "%s: backdrop noise %.2f, threshold %.2f, object covers %.1f%%",
        source,
        backdrop.noise,
        low,
        100.0 * foreground.mean(),
    )
    return soft_edges(rgb, foreground, backdrop.rgb)


# -------------------------------------------------------------------------- rembg backend


def rembg_matte(picture: Picture, *, model: str = DEFAULT_REMBG_MODEL) -> np.ndarray:
    """Alpha matte from a learned model through the optional ``rembg`` package.

    Args:
        picture: the loaded picture.
        model: a rembg session name ("birefnet-general", "birefnet-general-lite",
            "isnet-general-use", "u2net", ...).

    Returns:
        (H, W) uint8 alpha.

    Raises:
        MissingDependencyError: rembg is not installed.
        ConfigError: rembg has no model of that name.
        WeightsError: the model's weights could not be downloaded or loaded.
    """
    try:
        import rembg
        from rembg.sessions import sessions_class
    except ImportError as error:
        raise MissingDependencyError(
            "background removal with --bg rembg", "rembg", 'pip install "genesis3d[rembg]"'
        ) from error
    from PIL import Image

    names = sorted(session.name() for session in sessions_class)
    if model not in names:
        raise ConfigError(f"rembg has no model {model!r}; it knows {', '.join(names)}")
    try:
        session = rembg.new_session(model)
    except (OSError, ValueError, RuntimeError) as error:
        # OSError covers urllib/requests network failures and unreadable files; pooch raises
        # ValueError on a checksum mismatch; onnxruntime raises RuntimeError on a bad file.
        raise WeightsError(
            f"the weights of the rembg model {model!r} could not be downloaded or loaded "
            f"({type(error).__name__}: {error}). rembg fetches them on first use into "
            "$U2NET_HOME (default ~/.u2net); on an offline machine, run it once on a connected "
            "machine and copy that folder over, or use --bg auto for a plain backdrop"
        ) from error
    cut = rembg.remove(Image.fromarray(picture.rgb), session=session, only_mask=True)
    mask = np.asarray(cut.convert("L"))
    if mask.shape != picture.size:
        raise WeightsError(
            f"the rembg model {model!r} returned a {mask.shape} mask for a {picture.size} "
            "picture; update rembg"
        )
    return np.ascontiguousarray(mask)
