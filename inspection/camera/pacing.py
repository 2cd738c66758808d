"""Pacing a source to a line rate: frames per second or parts per minute."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from inspection.errors import DefectscopeError

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|min|minute|h|hour)|(fps|ppm))?\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "fps": 1.0, "min": 60.0, "minute": 60.0, "ppm": 60.0,
        "h": 3600.0, "hour": 3600.0}


class RateError(DefectscopeError):
    """A rate that cannot be read or is not positive."""


def parse_rate(text: str | float | None) -> float | None:
    """'12', '12/s', '12fps' -> 12.0 per second; '90/min' or '90ppm' -> 1.5; None or '' -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _RATE.match(text)
        if not m:
            raise RateError(f"cannot read rate {text!r}: write e.g. 10 (frames per second), 10/s, 90/min or 90ppm")
        unit = (m.group(2) or m.group(3) or "s").lower()
        value = float(m.group(1)) / _PER[unit]
    if not value > 0:
        raise RateError(f"rate {text!r} must be positive")
    return value


class Pacer:
    """Releases one tick per 1/rate seconds on a fixed schedule (no drift over long runs).

    When the consumer falls more than one period behind, the schedule restarts from now
    instead of releasing a burst of catch-up frames, as a real line would not speed up.
    ``clock`` and ``sleep`` are injectable so tests need not wait.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not rate > 0:
            raise RateError(f"rate {rate} must be positive")
        self.period = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None
        self.late = 0  # ticks released more than a period late

    def due(self) -> bool:
        """Non-blocking: True (and the schedule advances) when the next tick is due."""
        now = self._clock()
        if self._next is None or now >= self._next:
            self._advance(now)
            return True
        return False

    def wait(self) -> None:
        """Block until the next tick is due."""
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._advance(now)

    def _advance(self, now: float) -> None:
        if self._next is None or now - self._next > self.period:
            if self._next is not None:
                self.late += 1
            self._next = now
        self._next += self.period
