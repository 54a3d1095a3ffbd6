"""The API process's copy of the jobs clients are following, kept fresh by one thread.

Status polls and event streams are most of the server's requests while jobs run. Each
used to cost a database query through SQLAlchemy and a trip to the thread pool and back;
on a busy machine the trip (a thread wake-up, then the interpreter lock handed back to
the event loop) cost more than the query. Here they cost a dictionary lookup on the event
loop and a JSON body serialised once per change of the job.

One thread asks the store every ``refresh_seconds`` for the rows changed since its last
look (``updated_at``, which every write a client can see sets), whoever wrote them: the
workers' progress shows within that interval. The API's own writes (submit, cancel, retry,
delete) are put here as they happen, so a client sees its own action at once. A job that
is not here yet is read from the store once and kept.

The store is shared by one API process (the deployment this server supports); a job
deleted by another process would stay visible here until it leaves the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from genesis3d.server.store import Job, JobStore

logger = logging.getLogger(__name__)

#: Rows changed this long before the last look are read again: a write whose ``updated_at``
#: was taken before a later one committed (a write waiting for SQLite's lock, PostgreSQL
#: writers side by side), or a worker on a host whose clock is a little behind, is still seen.
OVERLAP_SECONDS = 2.0


@dataclass
class _Entry:
    job: Job
    body: bytes | None  # the serialised answer, made on the first read after a change
    put_at: float  # time.monotonic() of the API's last write of it, 0.0 if only refreshed


class JobSnapshots:
    """Recently followed jobs by id, with their serialised answer.

    Args:
        store: the job store.
        serialise: the JSON body of a job's answer (``JobOut``), computed once per change.
        refresh_seconds: interval of the refresh thread, the staleness bound of a worker's
            progress.
        capacity: jobs kept; the least recently used leave first.
    """

    def __init__(
        self,
        store: JobStore,
        serialise: Callable[[Job], bytes],
        *,
        refresh_seconds: float = 0.1,
        capacity: int = 10_000,
    ) -> None:
        self.store = store
        self.serialise = serialise
        self.refresh_seconds = refresh_seconds
        self.capacity = capacity
        self._jobs: OrderedDict[str, _Entry] = OrderedDict()
        self._deleted: dict[str, float] = {}
        self._lock = threading.Lock()
        self._since = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reads

    def get(self, job_id: str) -> Job | None:
        """The job as last seen, or None when it is not here (read it from the store then)."""
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return None
            self._jobs.move_to_end(job_id)
            return entry.job

    def body(self, job_id: str) -> bytes | None:
        """The serialised answer of a job held here, or None when it is not here."""
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return None
            self._jobs.move_to_end(job_id)
            if entry.body is not None:
                return entry.body
        body = self.serialise(entry.job)
        with self._lock:
            if self._jobs.get(job_id) is entry:
                entry.body = body
        return body

    # ----------------------------------------------------------------- writes

    def put(self, job: Job) -> None:
        """Keep ``job`` as just read or written; refreshes that began earlier leave it alone."""
        with self._lock:
            self._apply(job, time.monotonic(), put=True)

    def drop(self, job_id: str) -> None:
        """Forget a deleted job, and refuse any read of it made before the delete."""
        with self._lock:
            self._jobs.pop(job_id, None)
            self._deleted[job_id] = time.monotonic()

    def _apply(self, job: Job, read_at: float, *, put: bool = False) -> None:
        if job.id in self._deleted:
            return
        held = self._jobs.get(job.id)
        if held is not None:
            # A refresh whose query began before the API wrote this job may have read the
            # row before that write; the next refresh reads it after, and applies it.
            if not put and held.put_at > read_at:
                return
            self._jobs.move_to_end(job.id)
            if held.job == job:  # unchanged: keep its serialised answer
                if put:
                    held.put_at = read_at
                return
        self._jobs[job.id] = _Entry(job, None, read_at if put else 0.0)
        self._jobs.move_to_end(job.id)
        while len(self._jobs) > self.capacity:
            self._jobs.popitem(last=False)

    # ---------------------------------------------------------------- refresh

    def refresh(self) -> int:
        """Read the jobs changed since the last look; returns how many rows came."""
        since = self._since
        started = time.monotonic()
        changed = self.store.changed_since(since - OVERLAP_SECONDS if since else 0.0)
        with self._lock:
            for job in changed:
                self._apply(job, started)
                self._since = max(self._since, job.updated_at)
            horizon = time.monotonic() - 10 * OVERLAP_SECONDS
            for job_id in [key for key, when in self._deleted.items() if when < horizon]:
                del self._deleted[job_id]
        return len(changed)

    def start(self) -> None:
        """Read the newest jobs now, then keep refreshing in a thread until :meth:`stop`."""
        started = time.monotonic()
        newest = self.store.list(limit=min(self.capacity, 500))[0]
        with self._lock:
            for job in reversed(newest):
                self._apply(job, started)
        self._since = max((job.updated_at for job in newest), default=0.0)
        self._thread = threading.Thread(target=self._run, name="job-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stopping.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a transient database error must not end the refreshes
                logger.exception("refreshing the job snapshots failed; retrying")
