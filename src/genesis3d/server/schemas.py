"""The JSON shapes of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from genesis3d.server.store import Job

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: what was expected, what came, and the fix."""

    error: str = Field(description="machine-readable kind, e.g. unsupported_media_type")
    message: str = Field(description="one sentence: what was expected, what came, the fix")
    expected: str | None = None
    received: str | None = None
    fix: str | None = None


class Progress(BaseModel):
    stage: str | None = Field(description="current stage, e.g. preprocess, geometry, write")
    step: int
    total: int


class Picture(BaseModel):
    sha256: str
    name: str = Field(description="the uploaded file name, for display only")
    width: int
    height: int


class Artifact(BaseModel):
    name: str
    format: str
    kind: Literal["mesh", "splats"]
    bytes: int
    url: str


class JobError(BaseModel):
    type: str | None
    message: str


class Timings(BaseModel):
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stages: dict[str, float] = Field(description="seconds per stage of the last attempt")


class JobOut(BaseModel):
    id: str
    model: str
    status: JobStatus
    params: dict[str, Any] = Field(description="every parameter of the model, validated")
    seed: int
    formats: list[str]
    background: str | None
    size: float | None
    pivot: str
    picture: Picture
    progress: Progress
    cancel_requested: bool
    attempts: int
    max_attempts: int
    worker: str | None = Field(description="host:pid of the worker holding the job")
    error: JobError | None
    timings: Timings
    artifacts: list[Artifact]

    @classmethod
    def from_job(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            model=job.model,
            status=job.status,  # type: ignore[arg-type]
            params=job.params,
            seed=job.seed,
            formats=job.formats,
            background=job.background,
            size=job.size,
            pivot=job.pivot,
            picture=Picture(
                sha256=job.picture.split(".")[0],
                name=job.picture_name,
                width=job.picture_width,
                height=job.picture_height,
            ),
            progress=Progress(stage=job.stage, step=job.step, total=job.total),
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            worker=job.worker,
            error=JobError(type=job.error_type, message=job.error) if job.error else None,
            timings=Timings(
                created_at=_time(job.created_at),
                started_at=_time(job.started_at),
                finished_at=_time(job.finished_at),
                stages={key: round(value, 4) for key, value in job.timings.items()},
            ),
            artifacts=[
                Artifact(
                    name=item["name"],
                    format=item["format"],
                    kind=item["kind"],
                    bytes=item["bytes"],
                    url=f"/api/jobs/{job.id}/artifacts/{item['name']}",
                )
                for item in job.artifacts
            ],
        )


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class JobList(BaseModel):
    items: list[JobOut]
    total: int = Field(description="jobs matching the filters")
    limit: int
    offset: int


class ModelOut(BaseModel):
    name: str
    title: str
    task: Literal["mesh", "splats"]
    outputs: list[str]
    formats: list[str] = Field(description="artifact formats this model can be asked for")
    license: str
    available: bool
    reason: str
    description: str
    default_params: dict[str, Any]
    param_help: dict[str, str] = Field(
        default_factory=dict, description="one line of help per parameter"
    )


class WorkerOut(BaseModel):
    index: int
    device: str
    pid: int | None
    alive: bool
    restarts: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    jobs: dict[str, int] = Field(description="number of jobs per status")
    workers: list[WorkerOut]
