"""One worker process: claims jobs with a lease, runs them, writes their artifacts.

Started by :class:`genesis3d.server.pool.WorkerPool` as
``python -m genesis3d.server.worker SETTINGS_JSON DEVICE PARENT_PID``. The pipeline of the
last model stays loaded between jobs of that model; switching models drops it first so
two are never in memory together. SIGTERM stops the worker at the next step boundary,
giving its job back to the queue without counting the attempt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from typing import Any

from genesis3d import api
from genesis3d.devices import release_memory, resolve_device
from genesis3d.errors import CancelledError, GenesisError
from genesis3d.progress import ProgressEvent
from genesis3d.registry import get_family
from genesis3d.server.jobs import plan_artifacts
from genesis3d.server.settings import Settings
from genesis3d.server.store import Job, JobStore
from genesis3d.server.workspace import Workspace

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.2
REAP_EVERY_SECONDS = 1.0


def worker_id(pid: int | None = None) -> str:
    """The name a worker holds leases under: host and process id."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


class _Stopping(Exception):
    """The worker was asked to stop: give the job back."""


class _LeaseLost(Exception):
    """Another worker may now hold the job: drop this attempt's results."""


class Worker:
    """Runs jobs one at a time on one device."""

    def __init__(self, settings: Settings, device: str, parent_pid: int | None = None) -> None:
        self.settings = settings
        self.device = device
        self.parent_pid = parent_pid
        self.id = worker_id()
        self.store = JobStore(settings.resolved_database_url)
        self.workspace = Workspace(settings.workspace).create()
        self.stopping = threading.Event()
        self._pipeline: Any = None
        self._pipeline_model: str | None = None

    # ------------------------------------------------------------------ loop

    def run_forever(self) -> None:
        logger.info("worker %s on %s ready", self.id, self.device)
        last_reap = 0.0
        while not self.stopping.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                logger.warning("the server process is gone; worker %s stops", self.id)
                break
            if time.monotonic() - last_reap > REAP_EVERY_SECONDS:
                self.store.reap_expired()
                last_reap = time.monotonic()
            job = self.store.claim(self.id, self.settings.lease_seconds)
            if job is None:
                self.stopping.wait(IDLE_POLL_SECONDS)
                continue
            self.run_job(job)
        self.store.close()

    def run_job(self, job: Job) -> None:
        """Run one claimed job to its end: completed, failed, cancelled, or given back."""
        cancel = threading.Event()
        lost = threading.Event()
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, cancel, lost, done), daemon=True)
        beat.start()
        folder = self.workspace.attempt_folder(job.id, job.attempts)
        try:
            self._check(job, cancel, lost)
            artifacts, timings = self._generate(job, folder, cancel, lost)
            final = self.workspace.job_folder(job.id)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(folder, final)
            for artifact in artifacts:
                artifact["path"] = f"artifacts/{final.name}/{artifact['name']}"
            if not self.store.finish(
                job, self.id, "completed", timings=timings, artifacts=artifacts
            ):
                logger.warning("job %s was taken back before it completed here", job.id)
        except CancelledError:
            self.store.finish(job, self.id, "cancelled", error="cancelled on request")
        except _Stopping:
            self.store.release(job, self.id)
        except _LeaseLost:
            logger.warning("lost the lease of job %s; its results here are dropped", job.id)
        except GenesisError as error:
            self.store.finish(
                job, self.id, "failed", error=str(error), error_type=type(error).__name__
            )
        except Exception as error:  # job boundary: one broken job must not stop the worker
            logger.exception("job %s failed unexpectedly", job.id)
            self.store.finish(
                job,
                self.id,
                "failed",
                error=f"unexpected {type(error).__name__}: {error}",
                error_type=type(error).__name__,
            )
        finally:
            done.set()
            shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ steps

    def _generate(
        self, job: Job, folder, cancel: threading.Event, lost: threading.Event
    ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        family = get_family(job.model)
        plan = plan_artifacts(family, list(job.formats))

        def on_progress(event: ProgressEvent) -> None:
            self._check(job, cancel, lost)
            asked = self.store.progress(job, self.id, event.stage, event.step, event.total)
            if asked is None:
                raise _LeaseLost
            if asked:
                raise CancelledError("cancelled on request")

        on_progress(ProgressEvent("load", 0, 1, job.model))
        started = time.perf_counter()
        pipeline = self._load(job.model)
        load_seconds = time.perf_counter() - started
        on_progress(ProgressEvent("load", 1, 1, job.model))
        kinds = tuple(dict.fromkeys(kind for _, _, kind in plan))
        generation = api.run(
            self.workspace.picture_path(job.picture),
            pipeline=pipeline,
            seed=job.seed,
            outputs=kinds,
            background=job.background,
            progress=on_progress,
            **job.params,
        )
        folder.mkdir(parents=True, exist_ok=True)
        artifacts: list[dict[str, Any]] = []
        started = time.perf_counter()
        for index, (name, fmt, kind) in enumerate(plan):
            on_progress(ProgressEvent("write", index, len(plan), name))
            path = api.export(
                generation.asset(kind), folder / name, format=fmt, size=job.size, pivot=job.pivot
            )
            artifacts.append(
                {"name": name, "format": fmt, "kind": kind, "bytes": path.stat().st_size}
            )
        on_progress(ProgressEvent("write", len(plan), len(plan)))
        timings = {"load": load_seconds, **generation.timings}
        timings["write"] = time.perf_counter() - started
        return artifacts, timings

    def _check(self, job: Job, cancel: threading.Event, lost: threading.Event) -> None:
        if self.stopping.is_set():
            raise _Stopping
        if lost.is_set():
            raise _LeaseLost
        if cancel.is_set():
            raise CancelledError("cancelled on request")

    def _heartbeat(
        self, job: Job, cancel: threading.Event, lost: threading.Event, done: threading.Event
    ) -> None:
        interval = self.settings.lease_seconds / 3
        while not done.wait(interval):
            try:
                asked = self.store.heartbeat(job, self.id, self.settings.lease_seconds)
            except Exception:  # a transient database error must not kill the heartbeat
                logger.exception("heartbeat of job %s failed; retrying", job.id)
                continue
            if asked is None:
                lost.set()
                return
            if asked:
                cancel.set()

    def _load(self, model: str):
        """The model's pipeline, kept warm between jobs of one model; memory freed on a switch."""
        if self._pipeline_model != model:
            if self._pipeline is not None:
                logger.info("unloading %s to load %s", self._pipeline_model, model)
                self._pipeline = None
                self._pipeline_model = None
                release_memory(resolve_device(self.device))
            self._pipeline = api.load_pipeline(
                model, weights=self.settings.weights.get(model), device=self.device
            )
            self._pipeline_model = model
        return self._pipeline


def main(argv: list[str] | None = None) -> None:
    """Entry point of a worker process (see the module docstring for the arguments)."""
    args = sys.argv[1:] if argv is None else argv
    settings = Settings.from_json(json.loads(args[0]))
    device = args[1]
    parent_pid = int(args[2]) if len(args) > 2 else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(message)s")
    if settings.worker_nice and hasattr(os, "nice"):
        os.nice(settings.worker_nice)  # the API process keeps priority over generation
    worker = Worker(settings, device, parent_pid)

    def _stop(signum, frame) -> None:  # noqa: ARG001
        worker.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run_forever()


if __name__ == "__main__":
    main()
