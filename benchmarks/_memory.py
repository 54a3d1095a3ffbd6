"""Resident memory of the benchmark process, sampled per stage (Linux ``/proc``)."""

from __future__ import annotations

import threading
import time


def rss_mb() -> float:
    """This process' resident memory in MB (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class PeakSampler:
    """Samples this process' resident memory every 20 ms; ``mark(stage)`` starts a new stage."""

    def __init__(self, first_stage: str) -> None:
        self.peaks: dict[str, float] = {}
        self.stage = first_stage
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = rss_mb()
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
            time.sleep(0.02)

    def mark(self, stage: str) -> None:
        rss = rss_mb()
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
        self.stage = stage
        self.peaks[stage] = max(self.peaks.get(stage, 0.0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
