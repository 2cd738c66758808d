"""Line mode: a stream of parts at a rate, with a defect rate and scheduled process events.

The schedule is explicit so that monitoring can be tested against known faults. Part ``i``
(0-based) is decided and rendered from ``(seed, i)`` alone, so any part can be re-rendered and
two runs with the same arguments give the same stream.

Events (``events=`` or ``parse_event`` for the command line):

``LightingDrift(start, gain=0.6, ramp=200)``
    From part ``start`` the light level ramps linearly to ``gain`` x nominal over ``ramp``
    parts, then stays there (a lamp ageing, a cover left open). Labels do not change: this
    is a nuisance a monitor should notice before the model does.
``ToolFault(start, defect="scratch", rate=0.5, end=None)``
    From part ``start`` (until ``end``, exclusive) each part carries ``defect`` with
    probability ``rate`` in addition to the background defect rate (a worn tool, a burr on
    a fixture). Ground truth: ``cause == "tool_fault"`` on the parts it hit.

``process=ProcessDrivers()`` (``datasets.simulator.process``) gives every part process parameters
(belt speed, temperature, tool wear, ...) that drive scratches, stains and pits through a known
function, on top of the background rate.

Ground truth per part: ``label``, ``bbox``, ``severity``, ``part_index``, ``timestamp``,
``cause`` ("random" for background defects, "tool_fault", "process", or None for good parts),
``light_gain``, ``events`` (names of the events active at that part) and, with process drivers,
``process`` (the parameters a station reports).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets.simulator.process import ProcessDrivers
from datasets.simulator.simulator import (
    DEFAULT_SEVERITY,
    GOOD,
    SimulatedPart,
    SimulationError,
    Simulator,
    check_severity_range,
)


@dataclass(frozen=True)
class LightingDrift:
    start: int
    gain: float = 0.6
    ramp: int = 200

    name = "lighting_drift"

    def gain_at(self, index: int) -> float:
        if index < self.start:
            return 1.0
        t = 1.0 if self.ramp <= 0 else min(1.0, (index - self.start + 1) / self.ramp)
        return 1.0 + (self.gain - 1.0) * t

    def active(self, index: int) -> bool:
        return index >= self.start


@dataclass(frozen=True)
class ToolFault:
    start: int
    defect: str = "scratch"
    rate: float = 0.5
    end: int | None = None

    name = "tool_fault"

    def active(self, index: int) -> bool:
        return index >= self.start and (self.end is None or index < self.end)


LineEvent = LightingDrift | ToolFault


@dataclass(frozen=True, eq=False)
class LinePart:
    index: int
    timestamp: float
    part: SimulatedPart
    cause: str | None
    light_gain: float
    events: tuple[str, ...]
    process: dict[str, Any] | None = None

    def meta(self, *, with_mask: bool = False) -> dict[str, Any]:
        meta = {**self.part.meta(with_mask=with_mask), "part_index": self.index, "cause": self.cause,
                "light_gain": round(self.light_gain, 4), "events": list(self.events)}
        if self.process is not None:
            meta["process"] = dict(self.process)
        return meta


def parse_event(text: str) -> LineEvent:
    """``lighting_drift@500:gain=0.6,ramp=200`` or ``tool_fault@1000:defect=crack,rate=0.4,end=1500``."""
    kinds = {"lighting_drift": LightingDrift, "tool_fault": ToolFault}
    head, _, args = text.strip().partition(":")
    kind, at, start = head.partition("@")
    if kind not in kinds or not at or not start.strip().isdigit():
        raise SimulationError(
            f"cannot read event {text!r}: write lighting_drift@PART[:gain=0.6,ramp=200] "
            "or tool_fault@PART[:defect=scratch,rate=0.5,end=PART]"
        )
    fields: dict[str, Any] = {"start": int(start)}
    types = {"gain": float, "ramp": int, "defect": str, "rate": float, "end": int}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, _, value = item.partition("=")
        if key not in types or key not in kinds[kind].__dataclass_fields__:
            raise SimulationError(f"event {kind} has no parameter {key!r} (in {text!r})")
        try:
            fields[key] = types[key](value)
        except ValueError:
            raise SimulationError(f"event parameter {key}={value!r} is not a {types[key].__name__}") from None
    return kinds[kind](**fields)


class LineSimulator:
    """Parts coming down a line: ``for p in LineSimulator("flange", rate=2.0): ...``.

    ``rate`` (parts per second) sets the timestamps (``start_time + index / rate``), not the
    wall clock: iteration is as fast as rendering; pace it with ``inspection.camera.Pacer``.
    """

    def __init__(self, recipe: str = "flange", *, seed: int = 0, size: tuple[int, int] = (1024, 1280),
                 color: bool = False, defect_rate: float = 0.05, defects: Sequence[str] | None = None,
                 severity: tuple[float, float] = DEFAULT_SEVERITY, events: Sequence[LineEvent] = (),
                 rate: float = 1.0, start_time: float | None = None, n: int | None = None, jpeg: bool = True,
                 process: ProcessDrivers | None = None) -> None:
        self.sim = Simulator(recipe, size=size, color=color)
        self.defects = tuple(defects) if defects else self.sim.recipe.defects
        for d in self.defects:
            if d == GOOD:
                raise SimulationError("'good' is not a defect type")
            self.sim.check_label(d)
        if not 0 <= defect_rate <= 1:
            raise SimulationError(f"defect rate {defect_rate} is outside 0..1")
        if rate <= 0:
            raise SimulationError(f"line rate {rate} must be positive (parts per second)")
        for ev in events:
            if isinstance(ev, ToolFault):
                self.sim.check_label(ev.defect)
                if not 0 <= ev.rate <= 1:
                    raise SimulationError(f"tool fault rate {ev.rate} is outside 0..1")
        self.seed, self.defect_rate, self.rate, self.n, self.jpeg = seed, defect_rate, rate, n, jpeg
        self.severity = check_severity_range(severity)
        self.events = tuple(events)
        self.process = process
        if process is not None:
            for d in process.drivers.values():
                self.sim.check_label(d)
        self.start_time = time.time() if start_time is None else start_time

    def timestamp(self, index: int) -> float:
        return self.start_time + index / self.rate

    def process_params(self, index: int) -> dict[str, Any] | None:
        return None if self.process is None else self.process.params(index, self.timestamp(index))

    def fail_probability(self, params: Any) -> Any:
        """The true P(defective | process parameters) of this line (no tool faults): for benchmarks."""
        if self.process is None:
            raise SimulationError("this line has no process drivers")
        return self.process.fail_probability(params, self.defect_rate)

    def decide(self, index: int) -> tuple[str, str | None, float, tuple[str, ...]]:
        """(label, cause, light gain, active events) of part ``index``: cheap, without rendering."""
        rng = np.random.default_rng([self.seed, index, 0xE7])
        active = tuple(ev.name for ev in self.events if ev.active(index))
        gain = 1.0
        for ev in self.events:
            if isinstance(ev, LightingDrift):
                gain *= ev.gain_at(index)
        # background draws come first, so adding an event never changes the other parts' labels
        draws = rng.random(2 + len(self.events))
        for k, ev in enumerate(self.events):
            if isinstance(ev, ToolFault) and ev.active(index) and draws[2 + k] < ev.rate:
                return ev.defect, "tool_fault", gain, active
        if self.process is not None:  # its own stream: adding drivers never changes the background draws
            driven = self.process.draw(self.process_params(index), np.random.default_rng([self.seed, index, 0xD7])
                                       .random(3))
            if driven is not None:
                return driven, "process", gain, active
        if draws[0] < self.defect_rate:
            return self.defects[int(draws[1] * len(self.defects))], "random", gain, active
        return GOOD, None, gain, active

    def part(self, index: int) -> LinePart:
        label, cause, gain, active = self.decide(index)
        sev_rng = np.random.default_rng([self.seed, index, 0x5E])
        severity = float(sev_rng.uniform(*self.severity)) if label != GOOD else None
        part = self.sim.render(label, severity=severity, seed=(self.seed, index), light_gain=gain, jpeg=self.jpeg)
        return LinePart(index, self.timestamp(index), part, cause, gain, active, self.process_params(index))

    def __iter__(self) -> Iterator[LinePart]:
        index = 0
        while self.n is None or index < self.n:
            yield self.part(index)
            index += 1
