"""Loading pictures: PNG, JPEG and WebP only, recognised by content, EXIF-oriented, size-capped.

The format is decided by the file's first bytes, never by its name. The picture's width
and height are read from the file header by :func:`header_size` (a few dozen bytes, no
Pillow) and checked against ``max_pixels`` before any pixel is decoded, so a small file
that claims a huge canvas (a decompression bomb) is refused with our own message.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genesis3d.errors import InputError

if TYPE_CHECKING:
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")

#: Default cap on width x height, checked from the header before any pixel is decoded:
#: 64 megapixels (8000 x 8000). Every model resizes its input to about 1 MP, and a 64 MP
#: picture decodes to 256 MB of RGBA, which any machine that runs a model can hold. It is
#: also below Pillow's own warning level (89 MP), so Pillow never pre-empts this check.
DEFAULT_MAX_PIXELS = 64_000_000

#: Alpha below this counts as transparent when deciding whether a matte is real.
OPAQUE_LEVEL = 250

#: Fraction of the pixels (at least one) that must be below OPAQUE_LEVEL for the alpha
#: channel to count as a real matte; a handful of stray pixels left by an editor is not one.
REAL_ALPHA_FRACTION = 0.001

_CONVERT_HINT = "convert it to PNG (or JPEG / WebP)"

# Extra names for formats Pillow cannot identify, so the message can say what the file is.
_OTHER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"%PDF", "PDF"),
    (0, b"<svg", "SVG"),
    (0, b"<?xml", "XML/SVG"),
)


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
        """Whether the alpha channel cuts something out.

        True when at least ``REAL_ALPHA_FRACTION`` of the pixels (and at least one) have
        alpha below ``OPAQUE_LEVEL``; an all-opaque channel, or one with a few stray
        translucent pixels, is not a matte.
        """
        if self.alpha is None:
            return False
        translucent = int(np.count_nonzero(self.alpha < OPAQUE_LEVEL))
        return translucent >= max(1, REAL_ALPHA_FRACTION * self.alpha.size)

    def rgba(self) -> np.ndarray:
        """(H, W, 4) uint8 with the alpha channel, opaque where there is none."""
        alpha = self.alpha if self.alpha is not None else np.full(self.size, 255, np.uint8)
        return np.dstack([self.rgb, alpha])


def load_image(
    source: str | os.PathLike | bytes | PILImage.Image | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Picture:
    """Load a picture from a path, bytes, a PIL image or an array.

    Args:
        source: path or bytes of a PNG, JPEG or WebP file (recognised by content, not by
            name); a PIL image; or an (H, W, 3|4) uint8 array (float arrays with values
            in [0, 1] are converted to uint8).
        max_pixels: refuse pictures whose width x height exceeds this; for files it is
            checked from the header, before decoding (decompression-bomb guard).

    Returns:
        The :class:`Picture`, EXIF orientation applied, colour as 8-bit sRGB.

    Raises:
        InputError: missing file, a format other than PNG/JPEG/WebP, a damaged file, too
            many pixels, or an array of the wrong shape or dtype.
    """
    from PIL import Image

    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "<image>")
        return _from_pil(source, "<image>", source.format or "ARRAY")
    if isinstance(source, bytes | bytearray | memoryview):
        return _from_bytes(bytes(source), "<bytes>", max_pixels)
    if not isinstance(source, str | os.PathLike):
        raise InputError(
            "a picture must be a path, bytes, a PIL image or an (H, W, 3|4) array, "
            f"got {type(source).__name__}"
        )
    path = Path(os.fspath(source))
    if not path.is_file():
        what = "is a folder, not a picture file" if path.is_dir() else "not found"
        raise InputError(f"picture {what}: {path}")
    return _from_bytes(path.read_bytes(), str(path), max_pixels)


def sniff_format(data: bytes) -> str | None:
    """The accepted format of a file's content, from its signature.

    Args:
        data: the file's first bytes (12 are enough).

    Returns:
        "PNG", "JPEG" or "WEBP", or None for anything else.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height declared in a PNG, JPEG or WebP header, without decoding pixels.

    Args:
        data: the whole file (JPEG's size marker may follow large metadata blocks).
        fmt: "PNG", "JPEG" or "WEBP", as :func:`sniff_format` says.

    Returns:
        (width, height), or None when the header is too damaged to say.
    """
    try:
        if fmt == "PNG":
            if data[12:16] != b"IHDR":
                return None
            return struct.unpack(">II", data[16:24])
        if fmt == "WEBP":
            return _webp_size(data)
        return _jpeg_size(data)
    except struct.error:  # the file ends inside the header
        return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature byte, then 14-bit (size - 1) fields
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return (width, height) if height else None
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        position += 2 + length
    return None


def _from_bytes(data: bytes, source: str, max_pixels: int) -> Picture:
    from PIL import Image

    fmt = sniff_format(data[:12])
    if fmt is None:
        found = _name_other_format(data)
        what = f"a {found} file" if found else "not a picture file Genesis can read"
        raise InputError(
            f"{source} is {what}; Genesis accepts PNG, JPEG and WebP pictures; {_CONVERT_HINT}"
        )
    size = header_size(data, fmt)
    if size is None:
        raise InputError(
            f"{source} is a damaged {fmt} file: its header does not give the picture size; "
            f"re-export it or {_CONVERT_HINT}"
        )
    _check_pixels(size, max_pixels, source)
    with warnings.catch_warnings():
        # The size was vetted above against max_pixels; Pillow's warning adds nothing.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
            image.load()
        except Image.DecompressionBombError as error:
            # Only reachable when max_pixels is raised above Pillow's hard limit.
            width, height = size
            raise InputError(
                f"{source} is {width}×{height} = {width * height / 1e6:.0f} MP, more than Pillow "
                f"decodes at all ({2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP) whatever "
                "max_pixels says; downscale it"
            ) from error
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            # Pillow reports truncated data as OSError, bad chunks as SyntaxError/ValueError.
            raise InputError(
                f"{source} is a damaged or truncated {fmt} file ({error}); re-export it or "
                f"{_CONVERT_HINT}"
            ) from error
    if getattr(image, "n_frames", 1) > 1:
        logger.info("%s is animated (%d frames); using the first", source, image.n_frames)
    return _from_pil(image, source, fmt)


def _name_other_format(data: bytes) -> str | None:
    from PIL import Image, UnidentifiedImageError

    for offset, signature, name in _OTHER_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Reads the header only; the picture is never decoded.
            return Image.open(io.BytesIO(data)).format
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            return None
        except Image.DecompressionBombError:  # a huge file of another format: still name it
            return "picture of another format"


def _check_pixels(size: tuple[int, int], max_pixels: int, source: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{source} has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise InputError(
            f"{source} is {width}×{height} = {width * height / 1e6:.1f} MP, more than the "
            f"{max_pixels / 1e6:g} MP limit; downscale it or pass max_pixels={width * height}"
        )


def _from_pil(image: PILImage.Image, source: str, fmt: str) -> Picture:
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey (Pillow opens 16-bit grey PNGs as I;16 or I): scale 0..65535 to 0..255.
        values = np.asarray(image, np.float64)
        grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Picture(
            np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), None, source, fmt
        )
    if image.mode == "F":
        raise InputError(
            f"{source} holds floating-point samples; {_CONVERT_HINT} with 8-bit colour"
        )
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return Picture(
            np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), source, fmt
        )
    return Picture(np.ascontiguousarray(np.asarray(image.convert("RGB"))), None, source, fmt)


def _from_array(array: np.ndarray, max_pixels: int) -> Picture:
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(
            f"a picture array must have shape (H, W, 3) or (H, W, 4), got {array.shape}"
        )
    _check_pixels((array.shape[1], array.shape[0]), max_pixels, "<array>")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InputError(
                "a float picture array must hold finite values in [0, 1], got values from "
                f"{np.nanmin(array):.3g} to {np.nanmax(array):.3g}; divide by 255 if it is 0..255"
            )
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(
            f"a picture array must be uint8 (or float in [0, 1]), got {array.dtype}; "
            "convert it with array.astype(np.uint8) if it holds 0..255"
        )
    rgb = np.ascontiguousarray(array[..., :3])
    alpha = np.ascontiguousarray(array[..., 3]) if array.shape[2] == 4 else None
    return Picture(rgb, alpha, "<array>", "ARRAY")
