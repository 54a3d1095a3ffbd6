"""Checks of an uploaded picture, by content: format, size and pixel count; the body size limit."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

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

    def body(self) -> dict[str, str]:
        """The JSON body of the answer (the shape of every error of the API)."""
        return {
            "error": self.error,
            "message": self.message,
            "expected": self.expected,
            "received": self.received,
            "fix": self.fix,
        }


def too_large(max_bytes: int, received: str) -> UploadRejected:
    """The 413 refusal of a picture or request body over ``max_bytes``."""
    return UploadRejected(
        413,
        "upload_too_large",
        f"the picture must be at most {max_bytes} bytes, got {received}; "
        "send a smaller file (e.g. a JPEG or WebP, or fewer pixels)",
        f"at most {max_bytes} bytes",
        received,
        "compress or downscale the picture",
    )


class BodyTooLarge(HTTPException):
    """A request body passed the limit while it was being read.

    An ``HTTPException`` because the framework's body parsing passes those on unchanged
    (any other error there becomes a 400); the app answers it with :attr:`rejection`.
    """

    def __init__(self, rejection: UploadRejected) -> None:
        super().__init__(413, rejection.message)
        self.rejection = rejection


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
        raise too_large(max_bytes, f"more than {max_bytes} bytes")
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


class UploadSizeLimit:
    """ASGI middleware refusing a request body over ``max_body_bytes`` with 413, as it streams.

    A declared ``Content-Length`` over the limit is refused before any of the body is read.
    A body without one (``Transfer-Encoding: chunked``) is counted as it arrives, and the
    request is refused as soon as the count passes the limit, instead of being spooled
    whole first. Plain ASGI rather than ``@app.middleware("http")``, whose per-request task
    and body streams every request would pay for.

    Args:
        app: the ASGI app.
        path: the upload endpoint (exact path) whose POST bodies are limited.
        max_body_bytes: largest accepted body, multipart overhead included.
        max_picture_bytes: the picture limit named in the message.
    """

    def __init__(self, app: Any, *, path: str, max_body_bytes: int, max_picture_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.max_picture_bytes = max_picture_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(send, too_large(self.max_picture_bytes, f"a request of {declared} bytes"))
            return
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(
                        too_large(
                            self.max_picture_bytes,
                            f"a request passing {self.max_body_bytes} bytes (still sending)",
                        )
                    )
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as error:
            # Read outside the routes' error handling (e.g. by a middleware): answer here.
            if started:
                raise
            await _answer(send, error.rejection)


async def _answer(send, rejection: UploadRejected) -> None:
    payload = json.dumps(rejection.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": rejection.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                # The rest of the body is not read: this connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
