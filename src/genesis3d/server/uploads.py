"""Checks of an uploaded picture, by content: format, size and pixel count."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from genesis3d.errors import require

#: Pillow format -> stored extension.
ACCEPTED = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


class UploadRejected(Exception):
    """An upload that cannot be used; carries the HTTP status and the message parts."""

    def __init__(
        self, status: int, error: str, message: str, expected: str, received: str, fix: str
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.expected, self.received, self.fix = expected, received, fix


@dataclass(frozen=True)
class CheckedPicture:
    data: bytes
    sha256: str
    extension: str
    width: int
    height: int


def check_picture(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedPicture:
    """Accept PNG, JPEG or WebP within the limits, judged by content, not by name or header.

    Raises:
        UploadRejected: 413 too large, 415 not a supported picture, 422 too many pixels or
            a damaged file.
    """
    if len(data) > max_bytes:
        raise UploadRejected(
            413,
            "upload_too_large",
            f"the picture must be at most {max_bytes} bytes, got more than that; "
            "send a smaller file (e.g. a JPEG or WebP, or fewer pixels)",
            f"at most {max_bytes} bytes",
            f"more than {max_bytes} bytes",
            "compress or downscale the picture",
        )
    if not data:
        raise UploadRejected(
            422,
            "empty_upload",
            "the picture file is empty; send a PNG, JPEG or WebP picture",
            "a PNG, JPEG or WebP picture",
            "0 bytes",
            "attach the picture file",
        )
    image_module = require(
        "PIL.Image", feature="checking uploads", install="pip install 'genesis3d[server]'"
    )
    fmt: str | None = None
    width = height = 0
    try:
        with image_module.open(io.BytesIO(data)) as picture:
            fmt = picture.format
            width, height = picture.size
            if fmt in ACCEPTED and width * height <= max_pixels:
                picture.verify()  # reads the whole stream: a truncated file fails here
    except image_module.DecompressionBombError:
        fmt = "huge"
    except (image_module.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        if fmt is None:
            raise UploadRejected(
                415,
                "unsupported_media_type",
                "the upload must be a PNG, JPEG or WebP picture, got content that is not a "
                f"picture ({_sniff(data)}); send one of those formats",
                "PNG, JPEG or WebP picture content",
                _sniff(data),
                "convert the file to PNG, JPEG or WebP",
            ) from error
        raise UploadRejected(
            422,
            "damaged_picture",
            f"the {fmt} picture cannot be decoded ({error}); send an undamaged file",
            f"a complete {fmt} file",
            "a truncated or corrupt file",
            "re-export the picture",
        ) from error
    if fmt == "huge" or width * height > max_pixels:
        received = (
            f"{width}x{height} = {width * height} pixels" if width else "a decompression bomb"
        )
        raise UploadRejected(
            422,
            "too_many_pixels",
            f"the picture must have at most {max_pixels} pixels, got {received}; downscale it",
            f"at most {max_pixels} pixels",
            received,
            "downscale the picture (1024 to 2048 pixels on the long side is plenty)",
        )
    if fmt not in ACCEPTED:
        raise UploadRejected(
            415,
            "unsupported_media_type",
            f"the upload must be a PNG, JPEG or WebP picture, got {fmt}; convert it to one of those",
            "PNG, JPEG or WebP",
            str(fmt),
            "convert the file to PNG, JPEG or WebP",
        )
    return CheckedPicture(data, hashlib.sha256(data).hexdigest(), ACCEPTED[fmt], width, height)


def _sniff(data: bytes) -> str:
    head = data[:16]
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.lstrip().startswith((b"<", b"{", b"[")):
        return "text (HTML, XML or JSON)"
    return f"{len(data)} bytes starting with {head[:8].hex()}"
