"""SimulatedCamera: the line simulator as a frame source, for trying the system without a camera."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import cv2

from datasets.simulator import DEFAULT_RECIPE, DEFAULT_SEVERITY, LineEvent, LineSimulator
from datasets.simulator.process import ProcessDrivers
from inspection.camera.base import BaseSource
from inspection.types import Frame


class SimulatedCamera(BaseSource):
    """Frames of simulated parts with their ground truth in ``frame.meta``.

    meta: ``label``, ``bbox`` (x, y, w, h or None), ``severity``, ``recipe``, ``part_index``,
    ``cause``, ``light_gain``, ``events``; ``mask`` only with ``with_mask=True``; ``process`` (the
    part's process parameters) with ``process=ProcessDrivers()``.
    ``rate`` paces delivery (frames per second) and sets the line's nominal rate; ``n`` bounds
    the stream (None: endless). ``color="bgr"`` gives 3-channel frames (tinted part and belt).
    """

    def __init__(self, recipe: str = DEFAULT_RECIPE, *, seed: int = 0, rate: float | None = None,
                 n: int | None = None, size: tuple[int, int] = (1024, 1280), color: str = "gray",
                 defect_rate: float = 0.1, defects: Sequence[str] | None = None,
                 severity: tuple[float, float] = DEFAULT_SEVERITY, events: Sequence[LineEvent] = (),
                 with_mask: bool = False, jpeg: bool = True, process: ProcessDrivers | None = None,
                 **kwargs: Any) -> None:
        super().__init__(rate=rate, **kwargs)
        self.line = LineSimulator(recipe, seed=seed, size=size, color=color == "bgr", defect_rate=defect_rate,
                                  defects=defects, severity=severity, events=events, rate=rate or 1.0, n=n, jpeg=jpeg,
                                  process=process)
        self.name = f"sim:{recipe}"
        self.with_mask = with_mask
        self.force_bgr = color == "bgr"

    def _frames(self) -> Iterator[Frame]:
        for lp in self.line:
            img = lp.part.image
            if self.force_bgr and img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            yield Frame(img, source=self.name, timestamp=time.time(), meta=lp.meta(with_mask=self.with_mask))
