"""The REST routes: thin, each one a store call and a response model."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from genesis3d import api
from genesis3d.errors import ConfigError
from genesis3d.io import FORMATS
from genesis3d.registry import FAMILIES, availability, get_family, is_implemented
from genesis3d.server.fast_status import token_accepted
from genesis3d.server.jobs import plan_artifacts
from genesis3d.server.schemas import ErrorResponse, Health, JobList, JobOut, ModelOut, WorkerOut
from genesis3d.server.settings import Settings
from genesis3d.server.snapshots import JobSnapshots
from genesis3d.server.store import TERMINAL, Job, JobNotFound, JobStore, QueueFull
from genesis3d.server.uploads import check_picture
from genesis3d.server.workspace import Workspace

_bearer = HTTPBearer(auto_error=False, description="the token printed on the server's first start")

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="job id (32 hex digits)")]
EVENT_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0

MEDIA_TYPES = {"glb": "model/gltf-binary", "ply": "application/x-ply"}


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse requests without the bearer token when the server has one (any host but loopback).

    ``async`` because it only compares strings: a plain ``def`` dependency would cost every
    request a trip through the thread pool. ``credentials`` declares the scheme for the
    API docs; the check reads the header through :func:`token_accepted`, the one the
    status fast path (:mod:`genesis3d.server.fast_status`) uses too.
    """
    token = request.app.state.settings.token
    if not token_accepted(token, request.headers.get("authorization")):
        raise HTTPException(
            401,
            "this server needs `Authorization: Bearer TOKEN`; the token was printed on its first "
            "start and is kept in the file `token` of its workspace",
            headers={"WWW-Authenticate": "Bearer"},
        )


_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 404, 409, 413, 415, 422, 429)
}
router = APIRouter(prefix="/api", responses={401: {"model": ErrorResponse}})
protected = [Depends(require_token)]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> JobStore:
    return request.app.state.store


def _workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def _snapshots(request: Request) -> JobSnapshots:
    return request.app.state.snapshots


def serialise_job(job: Job) -> bytes:
    """The JSON body of a job's answer."""
    return JobOut.from_job(job).model_dump_json().encode()


async def _job_body(request: Request, job_id: str) -> bytes:
    """A job's answer from the snapshots; read from the store (then kept) when not there."""
    snapshots = _snapshots(request)
    body = snapshots.body(job_id)
    if body is None:
        snapshots.put(await run_in_threadpool(_store(request).get, job_id))
        body = snapshots.body(job_id)
    if body is None:  # deleted meanwhile
        raise JobNotFound(job_id)
    return body


def _keep(request: Request, job: Job) -> JobOut:
    """Put a job the API just wrote into the snapshots, and answer it."""
    _snapshots(request).put(job)
    return JobOut.from_job(job)


# The routes that answer while clients poll are ``async`` and make one trip to the thread
# pool for their database call: a plain ``def`` route runs whole in the pool, its
# validation and serialisation included, and under many polls the threads contend for
# the interpreter with the event loop that accepts and answers the requests.


@router.get("/health", response_model=Health, tags=["server"])
async def health(request: Request) -> Health:
    """Liveness, job counts per status and the worker processes (no token needed)."""
    from genesis3d import __version__

    return Health(
        status="ok",
        version=__version__,
        jobs=await run_in_threadpool(_store(request).counts),
        workers=[WorkerOut(**item) for item in request.app.state.pool.workers()],  # type: ignore[arg-type]
    )


@router.get("/models", response_model=list[ModelOut], dependencies=protected, tags=["models"])
def models(request: Request) -> list[ModelOut]:
    """The model families, whether each can run here (and why not), and their default parameters."""
    weights = _settings(request).weights
    rows = []
    for family in FAMILIES.values():
        status = availability(family, weights.get(family.name))
        rows.append(
            ModelOut(
                name=family.name,
                title=family.title,
                task=family.task,
                outputs=list(family.outputs),
                formats=[
                    name
                    for name, spec in FORMATS.items()
                    if set(spec.kinds) & set(family.outputs) and not spec.sidecars
                ],
                license=family.license,
                available=status.available,
                reason=status.reason,
                description=family.description,
                default_params=default_params(family.name),
                param_help=param_help(family.name),
            )
        )
    return rows


@functools.cache
def default_params(model: str) -> dict[str, Any]:
    """A family's default parameters ({} for a family this version does not ship), cached:
    the first call imports the family's pipeline module."""
    family = get_family(model)
    return api.default_params(family.name) if is_implemented(family) else {}


@functools.cache
def param_help(model: str) -> dict[str, str]:
    """A family's help line per parameter ({} for a family this version does not ship), cached."""
    family = get_family(model)
    return api.param_help(family.name) if is_implemented(family) else {}


@router.post(
    "/jobs",
    response_model=JobOut,
    status_code=201,
    dependencies=protected,
    responses={code: _errors[code] for code in (413, 415, 422, 429)},
    tags=["jobs"],
)
async def submit(
    request: Request,
    image: Annotated[UploadFile, File(description="the picture: PNG, JPEG or WebP")],
    model: Annotated[str, Form(description="model family, see GET /api/models")] = "inflate",
    params: Annotated[
        str, Form(description='JSON object of model parameters, e.g. {"resolution": 96}')
    ] = "{}",
    seed: Annotated[int, Form(ge=0, le=2**63 - 1)] = 0,
    formats: Annotated[
        str, Form(description="comma-separated artifact formats (glb, ply, splat, spz)")
    ] = "",
    background: Annotated[
        Literal["alpha", "auto", "rembg"] | None,
        Form(description="background removal; default: alpha when the picture has one"),
    ] = None,
    size: Annotated[float | None, Form(gt=0, le=1000, description="longest side in metres")] = None,
    pivot: Annotated[Literal["center", "bottom", "keep"], Form()] = "center",
) -> JobOut:
    """Queue a job: validate the model's parameters and the picture (by content), store both."""
    settings, store, workspace = _settings(request), _store(request), _workspace(request)
    family = get_family(model)
    status = availability(family, settings.weights.get(family.name))
    if not status.available:
        raise ConfigError(f"model {family.name} cannot run on this server: {status.reason}")
    try:
        given = json.loads(params)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f'params must be a JSON object such as {{"resolution": 96}}, got {params[:80]!r} ({error.msg})'
        ) from None
    if not isinstance(given, dict):
        raise ConfigError(f"params must be a JSON object, got {type(given).__name__}")
    wanted = [item.strip().lower().lstrip(".") for item in formats.split(",") if item.strip()]
    plan = plan_artifacts(family, wanted)
    data = await image.read(settings.max_upload_bytes + 1)

    def _check_and_store() -> Job:
        validated = api.validate_params(family.name, given)
        picture = check_picture(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels
        )
        # Held until the job row is in: a refused twin cannot remove the picture in between.
        with workspace.pictures_locked():
            name = workspace.store_picture(picture.sha256, picture.extension, picture.data)
            try:
                return store.submit(
                    max_queue=settings.max_queue,
                    model=family.name,
                    params=validated,
                    seed=seed,
                    formats=[fmt for _, fmt, _ in plan],
                    background=background,
                    size=size,
                    pivot=pivot,
                    picture=name,
                    picture_name=(image.filename or "picture")[:255],
                    picture_width=picture.width,
                    picture_height=picture.height,
                    max_attempts=settings.max_attempts,
                )
            except QueueFull as full:
                workspace.remove_picture(name, store.picture_in_use)
                refused = full
        raise refused.waiting(_retry_after(store, settings))

    return _keep(request, await run_in_threadpool(_check_and_store))


def _retry_after(store: JobStore, settings: Settings) -> int:
    mean = store.mean_run_seconds() or 5.0
    return max(1, min(600, math.ceil(mean / max(settings.workers, 1))))


@router.get("/jobs", response_model=JobList, dependencies=protected, tags=["jobs"])
async def list_jobs(
    request: Request,
    status: Annotated[
        Literal["queued", "running", "completed", "failed", "cancelled"] | None, Query()
    ] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    """Jobs, newest first, filtered by status and model, a page at a time."""
    jobs, total = await run_in_threadpool(
        functools.partial(
            _store(request).list, status=status, model=model, limit=limit, offset=offset
        )
    )
    return JobList(
        items=[JobOut.from_job(job) for job in jobs], total=total, limit=limit, offset=offset
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    dependencies=protected,
    responses={404: _errors[404]},
    tags=["jobs"],
)
async def get_job(request: Request, job_id: JobId) -> Response:
    """One job: status, stage and step, timings, error, artifacts.

    The worker's progress shows here within a tenth of a second of being recorded.
    """
    # Answered from the snapshots, serialised once per change of the job (see snapshots.py).
    return Response(await _job_body(request, job_id), media_type="application/json")


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    dependencies=protected,
    responses={404: _errors[404], 409: _errors[409]},
    tags=["jobs"],
)
def cancel_job(request: Request, job_id: JobId) -> JobOut:
    """Cancel a queued job at once, or a running one at its next step (``cancel_requested``)."""
    return _keep(request, _store(request).cancel(job_id))


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobOut,
    dependencies=protected,
    responses={404: _errors[404], 409: _errors[409], 429: _errors[429]},
    tags=["jobs"],
)
def retry_job(request: Request, job_id: JobId) -> JobOut:
    """Queue a failed or cancelled job again, attempts counted afresh."""
    store, settings = _store(request), _settings(request)
    try:
        return _keep(request, store.retry(job_id, max_queue=settings.max_queue))
    except QueueFull as full:
        raise full.waiting(_retry_after(store, settings)) from None


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    dependencies=protected,
    responses={404: _errors[404], 409: _errors[409]},
    tags=["jobs"],
)
def delete_job(request: Request, job_id: JobId) -> Response:
    """Delete a job that is not running, with its artifacts (and its picture if no job uses it)."""
    store, workspace = _store(request), _workspace(request)
    job = store.delete(job_id)
    _snapshots(request).drop(job.id)
    workspace.remove_job_files(job.id)
    workspace.remove_picture(job.picture, store.picture_in_use)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/artifacts/{name}",
    response_class=FileResponse,
    dependencies=protected,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the artifact file"},
        404: _errors[404],
    },
    tags=["jobs"],
)
def download_artifact(
    request: Request, job_id: JobId, name: Annotated[str, Path(max_length=64)]
) -> FileResponse:
    """Download one artifact of a completed job, by the name listed in its ``artifacts``."""
    job, path, match = _artifact(request, job_id, name)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(match["format"], "application/octet-stream"),
        filename=f"{job.id[:8]}-{match['name']}",
    )


@router.get(
    "/jobs/{job_id}/artifacts/{name}/inspect",
    dependencies=protected,
    responses={
        200: {
            "description": "health and statistics of the artifact, as `genesis3d inspect` "
            "prints them: for a mesh counts, bounds, watertight, manifold, degenerate faces, "
            "components, UV coverage, texture sizes; for splats count, bounds, scale and "
            "opacity statistics"
        },
        404: _errors[404],
    },
    tags=["jobs"],
)
async def inspect_artifact(
    request: Request, job_id: JobId, name: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    """Health figures of one artifact (``genesis3d.api.inspect``), computed once and kept."""
    job, path, _ = await run_in_threadpool(_artifact, request, job_id, name)
    return await run_in_threadpool(_inspect_cached, str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _inspect_cached(path: str, mtime_ns: int) -> dict[str, Any]:
    return api.inspect(path)


def _artifact(request: Request, job_id: str, name: str):
    """(job, file path, artifact record) of an artifact listed by the job; 404 otherwise."""
    job = _store(request).get(job_id)
    # The file path comes from the job's own record, never from the request.
    match = next((item for item in job.artifacts if item["name"] == name), None)
    if match is None:
        listed = ", ".join(item["name"] for item in job.artifacts) or "none yet"
        raise HTTPException(
            404, f"job {job_id} has no artifact {name!r}; it has: {listed} (status {job.status})"
        )
    path = _workspace(request).artifact_path(match["path"])
    if not path.is_file():
        raise HTTPException(404, f"the file of artifact {name!r} is missing from the workspace")
    return job, path, match


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    dependencies=protected,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: job` with a JobOut on every change; `event: end` once the job ends",
        },
        404: _errors[404],
    },
    tags=["jobs"],
)
async def job_events(request: Request, job_id: JobId) -> StreamingResponse:
    """Live progress as Server-Sent Events, until the job is completed, failed or cancelled."""
    snapshots = _snapshots(request)
    await _job_body(request, job_id)  # 404 before the stream starts

    async def stream():
        last, last_sent = b"", time.monotonic()
        while not await request.is_disconnected():
            try:
                data = await _job_body(request, job_id)
            except JobNotFound:
                yield f"event: deleted\ndata: {json.dumps({'id': job_id})}\n\n"
                return
            job = snapshots.get(job_id)
            if data != last:
                yield b"event: job\ndata: " + data + b"\n\n"
                last, last_sent = data, time.monotonic()
            if job is not None and job.status in TERMINAL:
                yield f"event: end\ndata: {json.dumps({'id': job_id, 'status': job.status})}\n\n"
                return
            if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(EVENT_POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
