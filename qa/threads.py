"""The QA batch runner's threads: decode workers and inference threads for this machine and model
(inspection.thread_layout), with the decode cost measured on the job's own first files."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from inspection.bundle import Bundle
from inspection.predictor import Predictor
from inspection.thread_layout import ThreadLayout, cpu_per_call, decode_threads, planned_predictor

SAMPLE_FILES = 6  # enough for a median; each is read and decoded four times (cpu_per_call)


def files_cost(paths: Sequence[Path], sample: int = SAMPLE_FILES):
    """A decode-cost measure for planned_predictor: the median CPU of reading, hashing, decoding and
    preprocessing the first readable files, as a worker does."""
    def cost(predictor: Predictor) -> float:
        times = []
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            times.append(cpu_per_call(lambda d=data: predictor.load(d, sha256=True)))
            if len(times) == sample:
                break
        return statistics.median(times) if times else 0.0
    return cost


def batch_predictor(bundle: Bundle, paths: Sequence[Path], *, backend: str = "auto", batch_size: int = 16,
                    workers: int | None = None, threads: int | None = None
                    ) -> tuple[Predictor, int, ThreadLayout | None]:
    """(predictor, decode workers, the plan or None). Given ``threads`` and ``workers`` are kept; what
    is not given comes from the plan."""
    if threads is not None:
        predictor, layout = Predictor(bundle, backend=backend, batch_size=batch_size, threads=threads), None
    else:
        predictor, layout = planned_predictor(bundle, files_cost(paths), backend=backend, batch_size=batch_size,
                                              reads_files=True)
    if workers is None:
        workers = layout.decode if layout is not None else decode_threads(reads_files=True)
    elif layout is not None:
        layout = replace(layout, decode=workers)  # what runs, not what the plan would have run
    return predictor, workers, layout
