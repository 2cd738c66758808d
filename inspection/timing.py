"""The pipeline's stages and one clock for them: the same names in API answers, QA reports and /metrics.

Each stage of one image is timed once, where it runs (ultralytics' predictor times its stages
with one ``Profile`` the same way). ``inference`` is the time of the whole batch the image was
part of; ``queue`` the service's wait for a batch; ``total`` the whole request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("decode", "quality", "preprocess", "queue", "inference", "decision", "explain", "total")


class StageClock:
    """Milliseconds per stage: ``with clock.stage("decode"): ...``; ``clock.ms`` holds the figures."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1000.0


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
