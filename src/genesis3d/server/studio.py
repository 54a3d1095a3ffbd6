"""The web studio's files: where the built bundle lives, and how a source checkout builds it.

The sources are in ``web/`` at the top of the repository (a Vite project); the bundle is
built into ``static/`` beside this module and is not kept in git. ``genesis3d studio build``
builds it, and ``genesis3d serve`` builds it in the background on a start where it is
missing and Node.js is present. A wheel built from a checkout with the bundle carries it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from genesis3d.errors import ConfigError, GenesisError, MissingDependencyError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().with_name("static")
WEB_DIR = Path(__file__).resolve().parents[3] / "web"
NODE_INSTALL = (
    "install Node.js 18 or newer with npm (https://nodejs.org, or apt-get install nodejs npm)"
)
BUILD_TIMEOUT_SECONDS = 900


class StudioBuildError(GenesisError):
    """npm could not install or build the web studio."""


def studio_built(static_dir: Path = STATIC_DIR) -> bool:
    """Whether the built studio (its ``index.html``) is present."""
    return (static_dir / "index.html").is_file()


def can_build(web_dir: Path = WEB_DIR) -> bool:
    """Whether this is a source checkout with the studio's sources and npm on PATH."""
    return (web_dir / "package.json").is_file() and shutil.which("npm") is not None


def build_studio(
    *, force: bool = False, web_dir: Path = WEB_DIR, static_dir: Path = STATIC_DIR
) -> Path:
    """Install the studio's npm packages (exact versions of ``package-lock.json``) and build it.

    Concurrent builds (two servers starting at once) wait for each other; the bundle
    replaces the old one in a single rename, so a server never serves half a build.

    Args:
        force: rebuild even when a bundle is present.
        web_dir: the Vite project.
        static_dir: where the bundle goes.

    Returns:
        ``static_dir``.

    Raises:
        ConfigError: no sources (an installed wheel without a bundle).
        MissingDependencyError: npm is not on PATH.
        StudioBuildError: npm failed; the message holds its output's end.
    """
    if not (web_dir / "package.json").is_file():
        raise ConfigError(
            f"the web studio's sources are not in {web_dir}; build it from a source checkout "
            "of genesis3d (git clone, then genesis3d studio build)"
        )
    npm = shutil.which("npm")
    if npm is None:
        raise MissingDependencyError("building the web studio", "npm", NODE_INSTALL)
    with _build_lock(web_dir) as held:
        if studio_built(static_dir) and not force:
            return static_dir
        if _needs_install(web_dir):
            logger.info("installing the web studio's npm packages in %s", web_dir)
            _npm(npm, ["ci", "--no-audit", "--no-fund"], web_dir, held)
        static_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".static-", dir=static_dir.parent))
        try:
            logger.info("building the web studio into %s", static_dir)
            _npm(
                npm,
                ["run", "build", "--", "--outDir", str(staging), "--emptyOutDir"],
                web_dir,
                held,
            )
            if not studio_built(staging):
                raise StudioBuildError(f"the studio build wrote no index.html into {staging}")
            old = static_dir.with_name(staging.name + "-old")
            if static_dir.exists():
                static_dir.rename(old)
            staging.rename(static_dir)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return static_dir


def build_in_background(web_dir: Path = WEB_DIR, static_dir: Path = STATIC_DIR) -> bool:
    """Start building the studio in a thread where it is missing and buildable.

    Returns:
        Whether a build was started.
    """
    if studio_built(static_dir) or not can_build(web_dir):
        return False

    def _run() -> None:
        # A failed build must not stop the server: the API works without the page.
        try:
            build_studio(web_dir=web_dir, static_dir=static_dir)
        except GenesisError as error:
            logger.error("the web studio could not be built: %s", error)

    threading.Thread(target=_run, name="studio-build", daemon=True).start()
    return True


def _needs_install(web_dir: Path) -> bool:
    installed = web_dir / "node_modules" / ".package-lock.json"
    lock = web_dir / "package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime


def _npm(npm: str, arguments: list[str], web_dir: Path, held: tuple[int, ...]) -> None:
    result = subprocess.run(
        [npm, *arguments],
        cwd=web_dir,
        # npm keeps the build lock open: a server stopped mid-build leaves npm running, and
        # the next build must wait for it rather than race it in node_modules.
        pass_fds=held,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise StudioBuildError(
            f"`npm {' '.join(arguments)}` failed in {web_dir} (exit {result.returncode}):\n{output}"
        )


@contextmanager
def _build_lock(web_dir: Path):
    """Hold an exclusive lock on ``web/.build.lock``; yields the file descriptors to pass on."""
    try:
        import fcntl
    except ImportError:  # Windows: builds are not serialised there
        logger.info("no fcntl here: concurrent studio builds are not serialised")
        yield ()
        return
    with open(web_dir / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield (handle.fileno(),)
