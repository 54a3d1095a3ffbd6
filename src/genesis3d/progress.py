"""Progress reporting: long work calls a callback that the CLI turns into progress bars and
the server into events. A callback may raise :class:`genesis3d.errors.CancelledError` to stop
the work at the next step boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one stage.

    Attributes:
        stage: short stage name ("preprocess", "geometry", "texture", "sample", ...).
        step: steps done in this stage, 0..total.
        total: steps in this stage (1 for a stage that is not subdivided).
        message: optional human-readable detail.
    """

    stage: str
    step: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """A callback that ignores every event."""


class StageReporter:
    """Reports the steps of one stage to a callback: ``start()``, ``advance()``..., ``done()``."""

    def __init__(self, callback: ProgressCallback | None, stage: str, total: int = 1) -> None:
        self.callback = callback or no_progress
        self.stage = stage
        self.total = max(int(total), 1)
        self.step = 0

    def start(self, message: str = "") -> StageReporter:
        self.callback(ProgressEvent(self.stage, 0, self.total, message))
        return self

    def advance(self, steps: int = 1, message: str = "") -> None:
        self.step = min(self.step + steps, self.total)
        self.callback(ProgressEvent(self.stage, self.step, self.total, message))

    def done(self, message: str = "") -> None:
        if self.step < self.total:
            self.step = self.total
            self.callback(ProgressEvent(self.stage, self.step, self.total, message))
