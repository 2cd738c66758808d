"""Progress bars (rich) with loss, metric and ETA, and one line per epoch; silent on ranks other than 0."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, enabled: bool = True, bars: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled  # epoch lines and notes
        self.bars = enabled and bars  # live bars: off in logs and CI
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._progress: Progress | None = None
        self._task: Any = None

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def start(self, description: str, total: int) -> None:
        if not self.bars:
            return
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, info="")

    def advance(self, info: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, info=info)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
