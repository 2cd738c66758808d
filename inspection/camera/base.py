"""The one protocol every frame source follows, and the base class that implements its chores."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

from inspection.camera.pacing import Pacer
from inspection.errors import DefectscopeError
from inspection.types import Frame

log = logging.getLogger("inspection.camera")


class CameraError(DefectscopeError):
    """A source cannot be opened, stopped for good, or was used after close()."""


@runtime_checkable
class FrameSource(Protocol):
    """Iterate to get ``Frame`` objects; ``close()`` (or leaving a ``with`` block) releases the device."""

    name: str

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@dataclass
class SourceStats:
    frames: int = 0  # frames delivered
    dropped: int = 0  # frames lost: failed reads, or skipped to keep a live source at the paced rate
    skipped: int = 0  # files that were not images or could not be decoded (folder sources)
    reconnects: int = 0  # successful reopenings of a stream that dropped


class BaseSource:
    """Context management, pacing and statistics; subclasses yield frames from ``_frames``."""

    name: str = "source"
    self_paced = False  # True for live sources that pace by dropping frames instead of sleeping

    def __init__(self, *, rate: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.pacer = Pacer(rate, clock=clock, sleep=sleep) if rate else None
        self.stats = SourceStats()
        self.closed = False

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _release(self) -> None:
        """Free the device, stream or file handles (called once by close)."""

    def __iter__(self) -> Iterator[Frame]:
        if self.closed:
            raise CameraError(f"{self.name} is closed: open a new source")
        for frame in self._frames():
            if self.closed:
                return
            if self.pacer is not None and not self.self_paced:
                self.pacer.wait()
            self.stats.frames += 1
            yield frame

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._release()

    def __enter__(self) -> BaseSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not keep a camera locked
        with contextlib.suppress(Exception):  # nothing sensible to do during garbage collection
            self.close()
