"""Loading pictures: PNG, JPEG and WebP only, recognised by content, EXIF-oriented, size-capped."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genesis3d.errors import InputError

ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")

#: Default cap on width x height, checked from the header before any pixel is decoded:
#: 64 megapixels (8000 x 8000), far above what any model uses and far below what would
#: exhaust memory when decoded (64 MP x 4 bytes = 256 MB).
DEFAULT_MAX_PIXELS = 64_000_000

#: Alpha below this counts as transparent when deciding whether a matte is real.
OPAQUE_LEVEL = 250


@dataclass(frozen=True)
class Picture:
    """A decoded picture.

    Attributes:
        rgb: (H, W, 3) uint8 sRGB colour, EXIF orientation applied.
        alpha: (H, W) uint8 straight alpha, or None when the file has no alpha channel.
        source: the path, or "<bytes>" / "<array>" / "<image>", for messages.
        format: "PNG", "JPEG", "WEBP" or "ARRAY".
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source: str
    format: str

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def has_real_alpha(self) -> bool:
        """Whether the alpha channel actually cuts something out (some pixels not opaque)."""
        return self.alpha is not None and bool((self.alpha < OPAQUE_LEVEL).any())

    def rgba(self) -> np.ndarray:
        """(H, W, 4) uint8 with the alpha channel, opaque where there is none."""
        alpha = self.alpha if self.alpha is not None else np.full(self.size, 255, np.uint8)
        return np.dstack([self.rgb, alpha])


def load_image(
    source: str | os.PathLike | bytes | np.ndarray | object, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Picture:
    """Load a picture from a path, bytes, a PIL image or an array.

    Args:
        source: path or bytes of a PNG, JPEG or WebP file; a PIL image; or an
            (H, W, 3|4) uint8 array (float arrays in [0, 1] are converted).
        max_pixels: refuse pictures with more pixels than this (decompression-bomb guard).

    Returns:
        The :class:`Picture`.

    Raises:
        InputError: missing file, unsupported or corrupt content, or too many pixels.
    """
    from PIL import Image

    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "<image>")
        return _from_pil(source, "<image>", source.format or "ARRAY")
    if isinstance(source, bytes | bytearray):
        return _from_stream(io.BytesIO(source), "<bytes>", max_pixels)
    path = Path(os.fspath(source))  # type: ignore[arg-type]
    if not path.is_file():
        raise InputError(f"picture not found: {path}")
    with path.open("rb") as stream:
        return _from_stream(io.BytesIO(stream.read()), str(path), max_pixels)


def _from_stream(stream: io.BytesIO, source: str, max_pixels: int) -> Picture:
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Our own cap below gives the message; Pillow's bomb warning/error must not pre-empt it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream, formats=list(ACCEPTED_FORMATS))
        except Image.DecompressionBombError as error:
            raise InputError(
                f"{source} is too large to decode safely ({error}); downscale it below {max_pixels / 1e6:.0f} MP"
            ) from error
        except UnidentifiedImageError as error:
            found = _sniff_other(stream)
            what = f"a {found} file" if found else "not a picture Genesis can read"
            raise InputError(
                f"{source} is {what}; Genesis accepts PNG, JPEG and WebP, so convert it to PNG"
            ) from error
        _check_pixels(image.size, max_pixels, source)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as error:
            raise InputError(
                f"{source} is a damaged or truncated {image.format} file: {error}"
            ) from error
    return _from_pil(image, source, image.format)


def _sniff_other(stream: io.BytesIO) -> str | None:
    from PIL import Image, UnidentifiedImageError

    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(stream).format
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None


def _check_pixels(size: tuple[int, int], max_pixels: int, source: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise InputError(
            f"{source} is {width}x{height} = {width * height / 1e6:.1f} MP, more than the {max_pixels / 1e6:.0f} MP limit; downscale it or raise max_pixels"
        )
    if width < 1 or height < 1:
        raise InputError(f"{source} has no pixels ({width}x{height})")


def _from_pil(image, source: str, fmt: str) -> Picture:
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, np.float64)
        image = _gray16_to_l(values)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return Picture(
            np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), source, fmt
        )
    return Picture(np.ascontiguousarray(np.asarray(image.convert("RGB"))), None, source, fmt)


def _gray16_to_l(values: np.ndarray):
    from PIL import Image

    peak = 65535.0 if values.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.round(values / peak * 255.0), 0, 255).astype(np.uint8), "L")


def _from_array(array: np.ndarray, max_pixels: int) -> Picture:
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(
            f"a picture array must have shape (H, W, 3) or (H, W, 4), got {array.shape}"
        )
    _check_pixels((array.shape[1], array.shape[0]), max_pixels, "<array>")
    if array.dtype.kind == "f":
        if array.min() < 0 or array.max() > 1:
            raise InputError("a float picture array must hold values in [0, 1]")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f"a picture array must be uint8 (or float in [0, 1]), got {array.dtype}")
    rgb = np.ascontiguousarray(array[..., :3])
    alpha = np.ascontiguousarray(array[..., 3]) if array.shape[2] == 4 else None
    return Picture(rgb, alpha, "<array>", "ARRAY")
