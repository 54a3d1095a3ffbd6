"""A real studio server in a subprocess (``genesis3d serve``), spoken to over HTTP."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the server tests need the dev extra (httpx)")
pytest.importorskip("fastapi", reason="the server tests need the server extra")

TERMINAL = ("completed", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running ``genesis3d serve`` process and an HTTP client pointed at it."""

    workspace: Path
    port: int
    options: dict[str, object]
    process: subprocess.Popen | None = None
    log: Path | None = None
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        command = [
            sys.executable,
            "-m",
            "genesis3d",
            "serve",
            "--workspace",
            str(self.workspace),
            "--port",
            str(self.port),
            # The suite builds the web studio once (studio_bundle), not in every server.
            "--no-build-studio",
        ]
        for key, value in self.options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GENESIS_")}
        self.log = self.workspace.parent / f"server-{self.port}-{time.monotonic_ns()}.log"
        self.workspace.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env=environment
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer in {timeout} s:\n{self.log.read_text()}")

    def wait_for_workers(self, timeout: float = 30.0) -> None:
        """Wait until every worker process has claimed its first poll (it logs 'ready')."""
        deadline = time.monotonic() + timeout
        expected = int(self.options.get("workers", 1))
        while time.monotonic() < deadline:
            if self.log.read_text().count(" ready") >= expected:
                return
            time.sleep(0.1)
        raise RuntimeError(f"workers not ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # --------------------------------------------------------------- HTTP helpers

    def request(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def submit(self, picture: bytes, *, name: str = "disc.png", **fields):
        data = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in fields.items()
        }
        return self.request("POST", "/api/jobs", files={"image": (name, picture)}, data=data)

    def job(self, job_id: str) -> dict:
        answer = self.request("GET", f"/api/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, job_id: str, statuses=TERMINAL, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


@pytest.fixture(scope="session")
def studio(tmp_path_factory):
    """One server shared by the API tests: listening beyond loopback (so a token is generated
    and required), one worker, small limits so the limit tests need no big payloads."""
    server = Server(
        tmp_path_factory.mktemp("studio") / "workspace",
        free_port(),
        {
            "host": "0.0.0.0",
            "workers": 1,
            "lease_seconds": 5,
            "max_queue": 3,
            "max_upload_bytes": 40_000,
            "max_pixels": 200 * 200,
        },
    )
    yield server.start()
    server.stop()


@pytest.fixture
def server(studio):
    """The shared server with the client sending its token."""
    studio.headers = {"Authorization": f"Bearer {(studio.workspace / 'token').read_text().strip()}"}
    studio.wait_for_workers()
    return studio


@pytest.fixture(scope="module")
def make_server(tmp_path_factory):
    """``make_server(workspace=None, **serve_options) -> Server`` (stopped after the test)."""
    started: list[Server] = []

    def _make(workspace: Path | None = None, **options) -> Server:
        folder = workspace or tmp_path_factory.mktemp("studio") / "workspace"
        server = Server(folder, free_port(), options)
        started.append(server)
        return server

    yield _make
    for server in started:
        server.stop()


def picture_bytes(size: int = 96, fmt: str = "PNG") -> bytes:
    """A red disc on a transparent (PNG/WebP) or white (JPEG) background."""
    from PIL import Image, ImageDraw

    mode = "RGB" if fmt == "JPEG" else "RGBA"
    image = Image.new(mode, (size, size), (255, 255, 255) if mode == "RGB" else (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse(
        (size // 6, size // 6, size - size // 6, size - size // 6), fill=(200, 60, 40)
    )
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def disc_png() -> bytes:
    return picture_bytes()


@pytest.fixture(scope="session")
def studio_bundle() -> Path:
    """The built web studio, built now from web/ when missing (npm ci, vite build)."""
    from genesis3d.server.studio import build_studio

    return build_studio()


#: Set by CI (.ci/run): a missing PostgreSQL fails the PostgreSQL tests instead of skipping them.
REQUIRE_POSTGRES = os.environ.get("GENESIS_TEST_POSTGRES") == "required"


def _postgres_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, or Debian's /usr/lib/postgresql/NN/bin
    (Debian's package puts only wrappers on PATH), the newest version first."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "pg_ctl").exists():
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
    )
    return versions[-1].parent if versions else None


def _unavailable(reason: str):
    if REQUIRE_POSTGRES:
        pytest.fail(
            f"{reason}, and GENESIS_TEST_POSTGRES=required (CI installs Debian's postgresql)"
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server (initdb + pg_ctl in a temporary folder, run unprivileged).

    PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user
    (created by Debian's package) through ``runuser``.
    """
    if REQUIRE_POSTGRES:
        import psycopg  # noqa: F401
    else:
        pytest.importorskip("psycopg", reason="psycopg is not installed")
    binaries = _postgres_binaries()
    if binaries is None:
        _unavailable("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's folder: that one is private to the test user, PostgreSQL may run as another.
    folder = Path(tempfile.mkdtemp(prefix="genesis-postgres-"))
    data = folder / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runner = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
        if runner is None:
            _unavailable("running as root and runuser is missing")
        shutil.chown(folder, "postgres")
        os.chmod(folder, 0o755)
        prefix = [runner, "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "genesis", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *prefix,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(folder / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://genesis@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the throwaway PostgreSQL server, as a SQLAlchemy URL."""
    import psycopg

    name = f"genesis_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + "/" + name
