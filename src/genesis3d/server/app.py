"""The FastAPI app factory of the studio server, and how to run it with uvicorn."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from genesis3d.errors import GenesisError, UnknownModelError
from genesis3d.server.fast_status import FastJobStatus
from genesis3d.server.pool import WorkerPool
from genesis3d.server.settings import Settings
from genesis3d.server.snapshots import JobSnapshots
from genesis3d.server.store import JobConflict, JobNotFound, JobStore, QueueFull
from genesis3d.server.uploads import BodyTooLarge, UploadRejected, UploadSizeLimit
from genesis3d.server.workspace import Workspace

logger = logging.getLogger(__name__)

UPLOAD_PATH = "/api/jobs"
MULTIPART_OVERHEAD = 64 * 1024


def resolve_token(settings: Settings) -> tuple[Settings, bool]:
    """Settings with the token filled in where one is needed (any host but loopback).

    Returns:
        The settings, and whether a token was generated now (then show it once).
    """
    if settings.token is not None or settings.loopback:
        return settings, False
    token, created = Workspace(settings.workspace).create().load_or_create_token()
    return settings.replace(token=token), created


def create_app(
    settings: Settings,
    *,
    start_workers: bool = True,
    build_studio: bool = False,
    static_dir: Path | None = None,
) -> FastAPI:
    """Build the studio app: job store in the workspace, worker processes, REST routes, web page.

    Args:
        settings: the validated configuration.
        start_workers: start ``settings.workers`` worker processes with the app.
        build_studio: build the web studio in the background when it is missing and this
            is a source checkout with npm (see :mod:`genesis3d.server.studio`).
        static_dir: folder of the built web studio; default the package's ``static/``.

    Returns:
        The ASGI app; the workers start and stop with its lifespan.
    """
    from genesis3d import __version__
    from genesis3d.server.routes import router, serialise_job
    from genesis3d.server.studio import STATIC_DIR, build_in_background

    static_dir = STATIC_DIR if static_dir is None else static_dir
    settings, _ = resolve_token(settings)
    workspace = Workspace(settings.workspace).create()
    store = JobStore(settings.resolved_database_url)
    pool = WorkerPool(settings, store)
    snapshots = JobSnapshots(store, serialise_job)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        snapshots.start()
        if start_workers:
            pool.start()
        if build_studio and build_in_background(static_dir=static_dir):
            studio_files.building = True
            logger.info("the web studio is being built; its page appears when the build ends")
        # Import the pipeline modules now rather than on the first request that needs them.
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
        try:
            yield
        finally:
            pool.stop()
            snapshots.stop()
            store.close()

    app = FastAPI(
        title="Genesis studio",
        version=__version__,
        description=(
            "Turn pictures into 3D assets on a shared machine: submit a picture, follow the "
            "job's progress (polling or Server-Sent Events), download its artifacts. "
            "Send `Authorization: Bearer TOKEN` when the server listens beyond loopback."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.workspace = workspace
    app.state.pool = pool
    app.state.snapshots = snapshots
    app.include_router(router)
    _install_error_handlers(app)
    studio_files = StudioFiles(static_dir)
    app.mount("/", studio_files, name="studio")

    # Innermost of the middlewares: CORS, when set, still wraps its answers.
    app.add_middleware(FastJobStatus, snapshots=snapshots, token=settings.token)
    app.add_middleware(
        UploadSizeLimit,
        path=UPLOAD_PATH,
        max_body_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD,
        max_picture_bytes=settings.max_upload_bytes,
    )
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


NOT_BUILT_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Genesis studio</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>Genesis studio</h1><p>The web studio is not built yet{reason}.</p>
<p>Build it from a source checkout with Node.js and npm: <code>genesis3d studio build</code>
(<code>genesis3d serve</code> also builds it on a start where it is missing), then reload.
The REST API works without it: see <a href="/docs">/docs</a>.</p></body></html>"""


class StudioFiles:
    """The built web studio as static files; a page saying how to build it while it is missing.

    The folder is looked at on every request, so a bundle built after the start (in the
    background by ``genesis3d serve``) is served without a restart.
    """

    def __init__(self, directory: Path, *, building: bool = False) -> None:
        from starlette.staticfiles import StaticFiles

        self.directory = directory
        self.building = building
        self.files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope, receive, send) -> None:
        from starlette.responses import HTMLResponse

        from genesis3d.server.studio import studio_built

        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            raise StarletteHTTPException(
                404, f"no API endpoint {scope['path']}; see the OpenAPI document at /docs"
            )
        if scope["type"] == "http" and not studio_built(self.directory):
            reason = " (it is being built now)" if self.building else ""
            response = HTMLResponse(NOT_BUILT_PAGE.format(reason=reason), status_code=503)
            await response(scope, receive, send)
            return
        await self.files(scope, receive, send)


def _warm_up() -> None:
    from genesis3d.registry import FAMILIES
    from genesis3d.server.routes import default_params

    for name in FAMILIES:
        default_params(name)


def _error(
    status: int,
    error: str,
    message: str,
    *,
    expected: str | None = None,
    received: str | None = None,
    fix: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": error,
        "message": message,
        "expected": expected,
        "received": received,
        "fix": fix,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UploadRejected)
    async def _upload(request: Request, error: UploadRejected) -> JSONResponse:
        return _error(
            error.status,
            error.error,
            error.message,
            expected=error.expected,
            received=error.received,
            fix=error.fix,
        )

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, error: BodyTooLarge) -> JSONResponse:
        response = await _upload(request, error.rejection)
        # Close rather than read the rest of the body to keep the connection.
        response.headers["Connection"] = "close"
        return response

    @app.exception_handler(JobNotFound)
    async def _not_found(request: Request, error: JobNotFound) -> JSONResponse:
        return _error(
            404,
            "job_not_found",
            f"no job with id {error}; it never existed or was deleted (list jobs with GET /api/jobs)",
            expected="the id of an existing job",
            received=str(error),
            fix="list the jobs with GET /api/jobs",
        )

    @app.exception_handler(JobConflict)
    async def _conflict(request: Request, error: JobConflict) -> JSONResponse:
        return _error(409, "job_state_conflict", str(error))

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return _error(
            429,
            "queue_full",
            str(error),
            expected=f"fewer than {error.limit} queued jobs",
            received=f"{error.queued} queued jobs",
            fix=f"retry after {error.retry_after} s",
            headers={"Retry-After": str(error.retry_after)},
        )

    @app.exception_handler(UnknownModelError)
    async def _unknown_model(request: Request, error: UnknownModelError) -> JSONResponse:
        return _error(422, "unknown_model", str(error), fix="see GET /api/models")

    @app.exception_handler(GenesisError)
    async def _genesis(request: Request, error: GenesisError) -> JSONResponse:
        return _error(422, "invalid_request", str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg')} (got {_short(item.get('input'))})")
        return _error(
            422,
            "invalid_request",
            "the request does not match the API: " + "; ".join(problems),
            fix="see the OpenAPI document at /docs",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error"
        )
        return _error(error.status_code, code, detail, headers=headers)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def run_server(settings: Settings, *, build_studio: bool = True) -> None:
    """Serve the app with uvicorn until interrupted (workers stop with it).

    Args:
        settings: the validated configuration.
        build_studio: build the web studio in the background if it is missing.
    """
    import uvicorn

    app = create_app(settings, build_studio=build_studio)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=3,
    )
