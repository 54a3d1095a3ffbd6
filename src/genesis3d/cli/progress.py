"""Rich progress bars for the CLI, fed by :class:`genesis3d.progress.ProgressEvent`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from genesis3d.progress import ProgressCallback, ProgressEvent


class ProgressDisplay:
    """One progress bar per stage of the current job; disabled output costs nothing."""

    def __init__(self, *, enabled: bool, console) -> None:
        self.enabled = enabled
        self.console = console
        self._progress = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)

    @contextmanager
    def job(self, title: str) -> Iterator[ProgressCallback]:
        """A progress callback for one job; its bars are removed when the job ends."""
        progress = self._progress
        if progress is None:
            yield lambda event: None
            return
        tasks: dict[str, int] = {}

        def callback(event: ProgressEvent) -> None:
            task = tasks.get(event.stage)
            if task is None:
                task = tasks[event.stage] = progress.add_task(
                    f"{title} {event.stage}", total=event.total
                )
            progress.update(task, completed=event.step, total=event.total)

        try:
            yield callback
        finally:
            for task in tasks.values():
                progress.remove_task(task)
