"""The persistent job store: one table of jobs, in SQLite by default or PostgreSQL.

Written with portable SQLAlchemy 2.x Core statements only. A worker claims a job with a
compare-and-set ``UPDATE ... WHERE status = 'queued'`` that gives it a lease; it renews the
lease by heartbeat; every later write of that worker is conditional on still holding the
lease (same owner, same attempt), so a job whose worker was presumed dead and whose job went
back to the queue can never be completed twice.

The queue bound is checked and the job inserted in one transaction that holds the
submit lock, so concurrent submits (from any number of API processes) never push the queue
past its limit: on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (it takes
the database's write lock before its first read); on PostgreSQL a transaction-scoped
advisory lock serialises the submits and retries while the workers' writes go on.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

logger = logging.getLogger(__name__)

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "completed", "failed", "cancelled")
TERMINAL: tuple[str, ...] = ("completed", "failed", "cancelled")


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "genesis_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    formats: Mapped[list[str]] = mapped_column(JSON)
    background: Mapped[str | None] = mapped_column(String(16), nullable=True)
    size: Mapped[float | None] = mapped_column(Float, nullable=True)
    pivot: Mapped[str] = mapped_column(String(16))
    picture: Mapped[str] = mapped_column(String(80), index=True)
    picture_name: Mapped[str] = mapped_column(String(255))
    picture_width: Mapped[int] = mapped_column(Integer)
    picture_height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    queued_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    timings: Mapped[dict[str, float]] = mapped_column(JSON)
    artifacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


COLUMNS = tuple(column.name for column in JobRow.__table__.columns)


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row (plain values, safe to hand across threads)."""

    id: str
    model: str
    params: dict[str, Any]
    seed: int
    formats: list[str]
    background: str | None
    size: float | None
    pivot: str
    picture: str
    picture_name: str
    picture_width: int
    picture_height: int
    status: str
    stage: str | None
    step: int
    total: int
    cancel_requested: bool
    error: str | None
    error_type: str | None
    attempts: int
    max_attempts: int
    worker: str | None
    lease_expires: float | None
    created_at: float
    queued_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    timings: dict[str, float]
    artifacts: list[dict[str, Any]]


class StoreError(Exception):
    """Base of the store's refusals; the routes turn them into HTTP answers."""


class JobNotFound(StoreError):
    pass


class JobConflict(StoreError):
    """The job is in a state that does not allow the action (e.g. cancel a completed job)."""


class QueueFull(StoreError):
    """The queue holds its limit of jobs; ``retry_after`` is the caller's estimate of the wait."""

    def __init__(self, queued: int, limit: int, retry_after: int = 1) -> None:
        self.queued, self.limit, self.retry_after = queued, limit, retry_after
        super().__init__(
            f"the queue holds {queued} jobs, its limit is {limit}; retry in {retry_after} s"
        )

    def waiting(self, retry_after: int) -> QueueFull:
        """The same refusal with an estimate of the wait (made only when a submit is refused)."""
        return QueueFull(self.queued, self.limit, retry_after)


#: Key of PostgreSQL's transaction-scoped advisory lock that serialises queue-bound checks.
SUBMIT_LOCK_KEY = 0x67656E65  # "gene"
#: Execution option asking for a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE = {"genesis_write": True}


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, waits on locks) or any other SQLAlchemy URL.

    On SQLite, SQLAlchemy's own ``BEGIN`` replaces the driver's (which begins a transaction
    only at the first write, so a read-then-write is not atomic): reads begin a deferred
    transaction, connections with the :data:`WRITE` option begin ``IMMEDIATE``, taking the
    write lock up front and waiting for it (busy timeout) instead of failing on an upgrade.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=20
        )

        @event.listens_for(engine, "connect")
        def _pragmas(connection, record) -> None:  # noqa: ARG001
            connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cursor = connection.cursor()
            # WAL lets readers (status polls) go on while a worker writes progress.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            # A read is one statement, atomic by itself: no BEGIN round trip for it.
            if connection.get_execution_options().get("genesis_write", False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


#: Built once: a statement object keeps its compiled form and cache key between calls.
_GET = select(*JobRow.__table__.columns).where(JobRow.id == bindparam("job_id"))
_CHANGED = (
    select(*JobRow.__table__.columns)
    .where(JobRow.updated_at > bindparam("since"))
    .order_by(JobRow.updated_at)
)
_QUEUED = select(func.count()).select_from(JobRow).where(JobRow.status == "queued")


def _job(row: Any) -> Job:
    return Job(**row._asdict())


def _unleased(now: float) -> dict[str, Any]:
    """Column values of a job no worker holds any more (written at ``now``)."""
    return {"worker": None, "lease_expires": None, "updated_at": now}


def _back_in_queue(now: float) -> dict[str, Any]:
    """Column values of a job handed back to the queue, its progress reset."""
    return {"status": "queued", "stage": None, "step": 0, "total": 0, **_unleased(now)}


class JobStore:
    """Every read and write of jobs; safe to use from many threads and processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.writer = self.engine.execution_options(**WRITE)
        Base.metadata.create_all(self.engine)
        # create_all makes missing tables only; a store made by an older version lacks these.
        for index in JobRow.__table__.indexes:
            index.create(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ API side

    def submit(self, *, max_queue: int, retry_after: int = 1, **fields: Any) -> Job:
        """Insert a queued job, or raise :class:`QueueFull` when ``max_queue`` jobs wait."""
        now = time.time()
        values = {
            "id": uuid.uuid4().hex,
            "status": "queued",
            "stage": None,
            "step": 0,
            "total": 0,
            "cancel_requested": False,
            "error": None,
            "error_type": None,
            "attempts": 0,
            "worker": None,
            "lease_expires": None,
            "created_at": now,
            "queued_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
            "timings": {},
            "artifacts": [],
            **fields,
        }
        with self.writer.begin() as connection:
            self._check_queue(connection, max_queue, retry_after)
            connection.execute(JobRow.__table__.insert().values(**values))
        return Job(**values)

    def _check_queue(self, connection: Connection, max_queue: int, retry_after: int) -> None:
        """Raise :class:`QueueFull` when ``max_queue`` jobs wait; holds the submit lock till commit.

        Only submits and retries add queued jobs (a requeue after a lost worker puts back a
        job that was already accepted), so serialising those two makes the bound exact.
        """
        if self.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SUBMIT_LOCK_KEY})
        # On SQLite the connection began IMMEDIATE: it already holds the write lock.
        queued = connection.execute(_QUEUED).scalar_one()
        if queued >= max_queue:
            raise QueueFull(queued, max_queue, retry_after)

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as connection:
            row = connection.execute(_GET, {"job_id": job_id}).first()
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def list(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Jobs newest first, filtered, with the total count of the filter."""
        query = select(*JobRow.__table__.columns)
        count = select(func.count()).select_from(JobRow)
        for column, value in ((JobRow.status, status), (JobRow.model, model)):
            if value is not None:
                query = query.where(column == value)
                count = count.where(column == value)
        query = query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            total = connection.execute(count).scalar_one()
        return [_job(row) for row in rows], total

    def changed_since(self, since: float) -> list[Job]:
        """Jobs whose ``updated_at`` is after ``since`` (a time.time() value), oldest change first."""
        with self.engine.connect() as connection:
            rows = connection.execute(_CHANGED, {"since": since}).all()
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)
            ).all()
        found = {status: int(number) for status, number in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def mean_run_seconds(self, recent: int = 20) -> float | None:
        """Mean duration of the last completed jobs, for a Retry-After estimate."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(JobRow.started_at, JobRow.finished_at)
                .where(JobRow.status == "completed")
                .order_by(JobRow.finished_at.desc())
                .limit(recent)
            ).all()
        spans = [end - start for start, end in rows if start is not None and end is not None]
        return sum(spans) / len(spans) if spans else None

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job now, or ask a running job's worker to stop at its next step."""
        job = self.get(job_id)
        if job.status in TERMINAL:
            raise JobConflict(
                f"job {job_id} is already {job.status}; only queued or running jobs can be cancelled"
            )
        now = time.time()
        with self.writer.begin() as connection:
            done = connection.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued")
                .values(status="cancelled", finished_at=now, updated_at=now)
            ).rowcount
            if not done:
                connection.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == "running")
                    .values(cancel_requested=True, updated_at=now)
                )
        return self.get(job_id)

    def retry(self, job_id: str, *, max_queue: int, retry_after: int = 1) -> Job:
        """Queue a failed or cancelled job again, with its attempts counted afresh."""
        now = time.time()
        with self.writer.begin() as connection:
            self._check_queue(connection, max_queue, retry_after)
            done = connection.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(("failed", "cancelled")))
                .values(
                    status="queued",
                    stage=None,
                    step=0,
                    total=0,
                    cancel_requested=False,
                    error=None,
                    error_type=None,
                    attempts=0,
                    worker=None,
                    lease_expires=None,
                    queued_at=now,
                    started_at=None,
                    finished_at=None,
                    updated_at=now,
                    timings={},
                    artifacts=[],
                )
            ).rowcount
        job = self.get(job_id)
        if not done:
            raise JobConflict(
                f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried"
            )
        return job

    def delete(self, job_id: str) -> Job:
        """Remove a job that is not running; returns its last snapshot (to remove its files)."""
        job = self.get(job_id)
        with self.writer.begin() as connection:
            done = connection.execute(
                delete(JobRow).where(JobRow.id == job_id, JobRow.status != "running")
            ).rowcount
        if not done:
            raise JobConflict(f"job {job_id} is running; cancel it first, then delete it")
        return job

    def picture_in_use(self, picture: str) -> bool:
        with self.engine.connect() as connection:
            return (
                connection.execute(
                    select(func.count()).select_from(JobRow).where(JobRow.picture == picture)
                ).scalar_one()
                > 0
            )

    # --------------------------------------------------------------- worker side

    def reap_expired(self) -> int:
        """Take back the jobs of workers whose lease ran out: requeue, fail or cancel them."""
        now = time.time()
        expired = (JobRow.status == "running", JobRow.lease_expires < now)
        with self.writer.begin() as connection:
            cancelled = connection.execute(
                update(JobRow)
                .where(*expired, JobRow.cancel_requested.is_(True))
                .values(status="cancelled", finished_at=now, **_unleased(now))
            ).rowcount
            failed = connection.execute(
                update(JobRow)
                .where(*expired, JobRow.attempts >= JobRow.max_attempts)
                .values(
                    status="failed",
                    error_type="WorkerLost",
                    error=(
                        "the worker running this job stopped (killed, crashed or out of memory) on "
                        "every attempt, so the job was given up; retry it, or use smaller "
                        "parameters or a device with more memory"
                    ),
                    finished_at=now,
                    **_unleased(now),
                )
            ).rowcount
            requeued = connection.execute(
                update(JobRow).where(*expired).values(**_back_in_queue(now))
            ).rowcount
        if cancelled or failed or requeued:
            logger.warning(
                "leases expired: %d job(s) requeued, %d failed, %d cancelled",
                requeued,
                failed,
                cancelled,
            )
        return cancelled + failed + requeued

    def claim(
        self, worker: str, lease_seconds: float, models: tuple[str, ...] | None = None
    ) -> Job | None:
        """Take the oldest queued job (optionally of given models first) with a lease."""
        with self.engine.connect() as connection:
            query = (
                select(JobRow.id)
                .where(JobRow.status == "queued")
                .order_by(JobRow.queued_at, JobRow.id)
                .limit(8)
            )
            candidates = connection.execute(query).scalars().all()
        for job_id in candidates:
            now = time.time()
            with self.writer.begin() as connection:
                done = connection.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == "queued")
                    .values(
                        status="running",
                        worker=worker,
                        lease_expires=now + lease_seconds,
                        attempts=JobRow.attempts + 1,
                        started_at=now,
                        updated_at=now,
                        stage="starting",
                        step=0,
                        total=0,
                    )
                ).rowcount
            if done:
                return self.get(job_id)
        return None

    def _mine(self, job_id: str, worker: str, attempt: int) -> tuple[Any, ...]:
        return (
            JobRow.id == job_id,
            JobRow.status == "running",
            JobRow.worker == worker,
            JobRow.attempts == attempt,
        )

    def heartbeat(self, job: Job, worker: str, lease_seconds: float) -> bool | None:
        """Renew the lease; returns whether a cancel was asked, or None when the job is no longer ours."""
        now = time.time()
        with self.writer.begin() as connection:
            done = connection.execute(
                update(JobRow)
                .where(*self._mine(job.id, worker, job.attempts))
                .values(lease_expires=now + lease_seconds)
            ).rowcount
            if not done:
                return None
            return bool(
                connection.execute(
                    select(JobRow.cancel_requested).where(JobRow.id == job.id)
                ).scalar_one()
            )

    def progress(self, job: Job, worker: str, stage: str, step: int, total: int) -> bool | None:
        """Record a step; returns whether a cancel was asked, or None when the job is no longer ours."""
        now = time.time()
        with self.writer.begin() as connection:
            done = connection.execute(
                update(JobRow)
                .where(*self._mine(job.id, worker, job.attempts))
                .values(stage=stage, step=step, total=total, updated_at=now)
            ).rowcount
            if not done:
                return None
            return bool(
                connection.execute(
                    select(JobRow.cancel_requested).where(JobRow.id == job.id)
                ).scalar_one()
            )

    def finish(
        self,
        job: Job,
        worker: str,
        status: Status,
        *,
        error: str | None = None,
        error_type: str | None = None,
        timings: dict[str, float] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
    ) -> bool:
        """End the worker's attempt; False when the job is no longer ours (nothing written)."""
        now = time.time()
        with self.writer.begin() as connection:
            return bool(
                connection.execute(
                    update(JobRow)
                    .where(*self._mine(job.id, worker, job.attempts))
                    .values(
                        status=status,
                        error=error,
                        error_type=error_type,
                        timings=timings or {},
                        artifacts=artifacts or [],
                        finished_at=now,
                        stage="done" if status == "completed" else job.stage,
                        **_unleased(now),
                    )
                ).rowcount
            )

    def release(self, job: Job, worker: str) -> bool:
        """Give a job back to the queue without counting the attempt (the worker is stopping)."""
        now = time.time()
        with self.writer.begin() as connection:
            return bool(
                connection.execute(
                    update(JobRow)
                    .where(*self._mine(job.id, worker, job.attempts))
                    .values(attempts=JobRow.attempts - 1, started_at=None, **_back_in_queue(now))
                ).rowcount
            )

    def expire_worker(self, worker: str) -> int:
        """End the leases of a worker known to be dead, so :meth:`reap_expired` takes its jobs back."""
        with self.writer.begin() as connection:
            return connection.execute(
                update(JobRow)
                .where(JobRow.status == "running", JobRow.worker == worker)
                .values(lease_expires=0.0)
            ).rowcount
