"""The worker processes of one server: started, watched, restarted when they die, stopped."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from genesis3d.server.settings import Settings
from genesis3d.server.store import JobStore
from genesis3d.server.worker import worker_id

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.5
RESTART_DELAY_SECONDS = 1.0


@dataclass
class WorkerSlot:
    index: int
    device: str
    process: subprocess.Popen | None = None
    restarts: int = 0
    started: float = 0.0


class WorkerPool:
    """``settings.workers`` worker processes, worker i on ``devices[i % len(devices)]``."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.slots = [
            WorkerSlot(index, settings.devices[index % len(settings.devices)])
            for index in range(settings.workers)
        ]
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        # The worker needs no token; keep it off the command line.
        self._arguments = json.dumps({**settings.to_json(), "token": None})

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)
        self._watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)
        self._watcher.start()

    def _spawn(self, slot: WorkerSlot) -> None:
        slot.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genesis3d.server.worker",
                self._arguments,
                slot.device,
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
        )
        slot.started = time.monotonic()
        logger.info("worker %d started on %s (pid %d)", slot.index, slot.device, slot.process.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            for slot in self.slots:
                process = slot.process
                if process is None or process.poll() is None or self._stopping.is_set():
                    continue
                logger.warning(
                    "worker %d (pid %d) exited with %s; its job goes back to the queue",
                    slot.index,
                    process.pid,
                    process.returncode,
                )
                # Its lease would expire by itself; ending it now makes recovery immediate.
                self.store.expire_worker(worker_id(process.pid))
                self.store.reap_expired()
                if time.monotonic() - slot.started < RESTART_DELAY_SECONDS:
                    time.sleep(RESTART_DELAY_SECONDS)
                slot.restarts += 1
                if not self._stopping.is_set():
                    self._spawn(slot)

    def workers(self) -> list[dict[str, object]]:
        return [
            {
                "index": slot.index,
                "device": slot.device,
                "pid": slot.process.pid if slot.process else None,
                "alive": slot.process is not None and slot.process.poll() is None,
                "restarts": slot.restarts,
            }
            for slot in self.slots
        ]

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Ask every worker to stop at its next step; kill those still busy after the grace."""
        self._stopping.set()
        running = [slot.process for slot in self.slots if slot.process is not None]
        for process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace_seconds
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                logger.warning("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
            self.store.expire_worker(worker_id(process.pid))
        if self._watcher is not None:
            self._watcher.join(timeout=2)
