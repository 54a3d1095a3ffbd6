"""Atomic file writing: a file appears complete under its name, or not at all.

Every writer of Genesis goes through :func:`atomic_write` (or :func:`write_output`, which
also accepts an open binary stream), so a failed or interrupted write never leaves a
partial file behind and never clobbers the file that was there before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from genesis3d.errors import InputError

#: A destination: a file name, or a binary stream that is written to and left open.
Destination = str | os.PathLike | BinaryIO

#: A source: a file name, or the bytes of a file.
Source = str | os.PathLike | bytes | bytearray | memoryview


def _new_file_mode() -> int:
    # The umask can only be read by setting it: done once, at import, before any thread
    # of Genesis writes a file.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


#: Permission bits of a file created the ordinary way (0666 less the process's umask).
_NEW_FILE_MODE = _new_file_mode()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it into place on success.

    On any exception the temporary file is removed and an existing file at ``path`` is left
    untouched, so a failed or interrupted write never leaves a partial output behind.

    Args:
        path: the final file name; its folder is created if missing.

    Yields:
        A binary file object to write to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    try:
        # mkstemp makes the file private (0600); the output gets the mode any new file gets.
        os.chmod(temporary, _NEW_FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        # BaseException too: a KeyboardInterrupt must not leave a .part file behind either.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_output(data: bytes, destination: Destination) -> None:
    """Write finished bytes to a file name (atomically) or to an open binary stream.

    Args:
        data: the complete file content.
        destination: a path, written through :func:`atomic_write`, or an object with a
            ``write`` method, written to and left open.
    """
    if hasattr(destination, "write"):
        destination.write(data)  # type: ignore[union-attr]
        return
    with atomic_write(destination) as stream:  # type: ignore[arg-type]
        stream.write(data)


def read_source(source: Source) -> tuple[bytes, str]:
    """The bytes of a file name or a bytes-like object, and a name for messages.

    Args:
        source: a path, or the bytes of a file.

    Returns:
        (content, name): the bytes and the path as text, or ``"<bytes>"``.

    Raises:
        InputError: when the path is not an existing file.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "<bytes>"
    path = Path(source)
    if not path.is_file():
        raise InputError(f"file not found: {path}; check the path")
    return path.read_bytes(), str(path)
