"""``open_source(spec)`` for tools that may run on a simulated line: ``sim`` and ``sim:RECIPE`` are the
camera simulator (ground truth in ``frame.meta``), every other spec a real source (inspection.camera)."""

from __future__ import annotations

from typing import Any

from datasets.simulator.camera import SimulatedCamera
from inspection.camera import FrameSource
from inspection.camera import open_source as open_real_source


def open_source(spec: str, *, rate: float | None = None, seed: int = 0, **options: Any) -> FrameSource:
    """``seed`` applies to the simulator; other ``options`` go to the source's constructor."""
    spec = str(spec).strip()
    if spec == "sim" or spec.startswith("sim:"):
        recipe = spec.partition(":")[2] or None
        return SimulatedCamera(*([recipe] if recipe else []), seed=seed, rate=rate, **options)
    return open_real_source(spec, rate=rate, **options)
