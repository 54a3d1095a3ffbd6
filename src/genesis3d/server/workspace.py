"""Where the studio keeps its files: pictures by content hash, artifacts by job id, the token.

Every path here is built from values the server made (a SHA-256, a job id it generated, a
format name from the fixed table), never from a client's file name.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PICTURE_NAME = re.compile(r"^[0-9a-f]{64}\.(png|jpg|webp)$")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TOKEN_FILE = "token"


class Workspace:
    """The studio's folder: ``studio.db``, ``pictures/``, ``artifacts/``, ``token``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.pictures = self.root / "pictures"
        self.artifacts = self.root / "artifacts"
        self._lock = threading.RLock()

    def create(self) -> Workspace:
        for folder in (self.root, self.pictures, self.artifacts):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def picture_path(self, name: str) -> Path:
        if not PICTURE_NAME.match(name):
            raise ValueError(f"not a stored picture name: {name!r}")
        return self.pictures / name

    @contextmanager
    def pictures_locked(self) -> Iterator[None]:
        """Hold the pictures' lock across several steps (store a picture, then insert its job)."""
        with self._lock:
            yield

    def store_picture(self, digest: str, extension: str, data: bytes) -> str:
        """Write a picture once under its content hash; returns its stored name."""
        name = f"{digest}.{extension}"
        path = self.picture_path(name)
        with self._lock:
            if not path.exists():
                temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                temporary.write_bytes(data)
                os.replace(temporary, path)
        return name

    def remove_picture(self, name: str, in_use) -> None:
        """Remove a stored picture unless ``in_use(name)`` says another job still needs it."""
        with self._lock:
            if not in_use(name):
                self.picture_path(name).unlink(missing_ok=True)

    def job_folder(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.artifacts / job_id

    def attempt_folder(self, job_id: str, attempt: int) -> Path:
        return self.artifacts / f"{self.job_folder(job_id).name}.attempt-{int(attempt)}.tmp"

    def remove_job_files(self, job_id: str) -> None:
        folder = self.job_folder(job_id)
        shutil.rmtree(folder, ignore_errors=True)
        for leftover in self.artifacts.glob(f"{folder.name}.attempt-*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)

    def artifact_path(self, relative: str) -> Path:
        """The file of an artifact recorded by a worker, refusing anything outside artifacts/."""
        path = (self.root / relative).resolve()
        if self.artifacts not in path.parents:
            raise ValueError(f"artifact path outside the workspace: {relative!r}")
        return path

    def load_or_create_token(self) -> tuple[str, bool]:
        """The bearer token kept in the workspace, created (owner-only file) on first use.

        Returns:
            The token and whether it was created now.
        """
        path = self.root / TOKEN_FILE
        if path.exists():
            return path.read_text().strip(), False
        token = secrets.token_urlsafe(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        return token, True
