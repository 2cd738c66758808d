"""A line whose process matters: process parameters per part that drive defects through a known function.

``ProcessDrivers`` gives every part of a ``LineSimulator`` its process parameters (what a station
would read from the PLC) and the probability of each defect type given them. The function is the
ground truth an analysis is checked against; nothing outside the simulator and the benchmarks
may look at it. The default line:

* ``belt_speed`` (m/s): setpoint changes every few hundred parts; scratches rise above a knee
  (``speed_knee``) linearly to ``scratch_max`` at the top of the range.
* ``temperature`` (°C): setpoint changes, and the oven wanders a few degrees around its setpoint;
  stains rise outside the window ``temp_window``.
* ``tool_wear`` (parts since the last tool change): pits rise past ``wear_knee``.
* ``humidity`` (%): a slow random walk that drives nothing (irrelevant).
* ``motor_current`` (A): follows belt speed plus noise (correlated with a driver, drives nothing).
* ``tool_id`` (T1..T4, the tool in use) and ``shift`` (A, B, C): categorical, drive nothing.

Every part also carries the line's background defect rate (``LineSimulator(defect_rate=)``), which
no setting removes: the best achievable fail rate inside the range is that background.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

SHIFT_S = 8 * 3600.0


@dataclass(frozen=True)
class ProcessDrivers:
    seed: int = 0
    speed_range: tuple[float, float] = (0.8, 1.6)
    speed_knee: float = 1.2
    scratch_max: float = 0.3
    temp_range: tuple[float, float] = (180.0, 230.0)
    temp_window: tuple[float, float] = (195.0, 215.0)
    stain_per_degree: float = 0.015  # stain probability per °C outside the window
    wear_knee: int = 400
    pit_per_part: float = 0.0006  # pit probability per part of wear beyond the knee
    tool_life: tuple[int, int] = (500, 1100)  # parts between tool changes
    segment: tuple[int, int] = (40, 240)  # parts between setpoint changes
    temp_wander: float = 3.0  # °C: an oven wanders around its setpoint (slowly: AR(1), 0.98 per part)

    @property
    def drivers(self) -> dict[str, str]:
        """The true drivers and the defect type each drives (for checking an analysis)."""
        return {"belt_speed": "scratch", "temperature": "stain", "tool_wear": "pit"}

    @property
    def names(self) -> tuple[str, ...]:
        return ("belt_speed", "temperature", "tool_wear", "humidity", "motor_current", "tool_id", "shift")

    # -- the hidden function ---------------------------------------------------------------------
    def defect_probabilities(self, p: Mapping[str, Any]) -> dict[str, float]:
        """Probability of each driven defect type for parameters ``p`` (numbers; arrays broadcast)."""
        speed, temp, wear = (np.asarray(p[k], np.float64) for k in ("belt_speed", "temperature", "tool_wear"))
        top = self.speed_range[1]
        scratch = self.scratch_max * np.clip((speed - self.speed_knee) / (top - self.speed_knee), 0, 1)
        lo, hi = self.temp_window
        stain = np.clip(self.stain_per_degree * (np.maximum(lo - temp, 0) + np.maximum(temp - hi, 0)), 0, 0.5)
        pit = np.clip(self.pit_per_part * (wear - self.wear_knee), 0, 0.5)
        return {"scratch": scratch, "stain": stain, "pit": pit}

    def fail_probability(self, p: Mapping[str, Any], background: float) -> np.ndarray:
        """P(a part is defective | parameters): the background rate and the driven types, independent."""
        ok = 1.0 - background
        for prob in self.defect_probabilities(p).values():
            ok = ok * (1.0 - prob)
        return 1.0 - ok

    # -- the line state --------------------------------------------------------------------------
    @cached_property
    def _plan(self) -> dict[str, np.ndarray]:
        """Setpoint schedules, drawn once per seed for the first ``PLAN`` parts (then repeating)."""
        rng = np.random.default_rng([self.seed, 0x9C0])
        n = PLAN

        def setpoints(lo: float, hi: float) -> np.ndarray:
            out = np.empty(n)
            i = 0
            while i < n:
                k = int(rng.integers(*self.segment))
                out[i : i + k] = rng.uniform(lo, hi)
                i += k
            return out

        wear = np.empty(n, np.int64)
        tool = np.empty(n, np.int64)
        i, t = 0, 0
        while i < n:
            life = int(rng.integers(*self.tool_life))
            wear[i : i + life] = np.arange(min(life, n - i))
            tool[i : i + life] = t % 4
            i, t = i + life, t + 1
        wander = np.empty(n)
        wander[0] = 0.0
        shocks = rng.normal(0, self.temp_wander * np.sqrt(1 - 0.98**2), n)
        for k in range(1, n):
            wander[k] = 0.98 * wander[k - 1] + shocks[k]
        humidity = 50 + np.cumsum(rng.normal(0, 0.4, n))
        humidity = 30 + np.abs((humidity - 30) % 80 - 40)  # reflect into 30..70
        return {"speed": setpoints(*self.speed_range), "temp": setpoints(*self.temp_range) + wander, "wear": wear,
                "tool": tool, "humidity": humidity}

    def params(self, index: int, timestamp: float) -> dict[str, Any]:
        """Process parameters of part ``index`` as a station would report them."""
        plan, i = self._plan, index % PLAN
        rng = np.random.default_rng([self.seed, index, 0x9C1])
        noise = rng.normal(0, 1, 4)
        speed = float(plan["speed"][i] + 0.01 * noise[0])
        return {
            "belt_speed": round(speed, 4),
            "temperature": round(float(plan["temp"][i] + 0.8 * noise[1]), 2),
            "tool_wear": int(plan["wear"][i]),
            "humidity": round(float(plan["humidity"][i] + 0.5 * noise[2]), 2),
            "motor_current": round(float(2.0 + 3.0 * speed + 0.4 * noise[3]), 3),
            "tool_id": f"T{int(plan['tool'][i]) + 1}",
            "shift": "ABC"[int(timestamp // SHIFT_S) % 3],
        }

    def draw(self, params: Mapping[str, Any], u: Sequence[float]) -> str | None:
        """The defect a part gets from uniform draws ``u`` (one per driven type), or None: the driven
        types in a fixed order, so one part carries at most one defect."""
        for (label, prob), x in zip(self.defect_probabilities(params).items(), u, strict=True):
            if x < float(prob):
                return label
        return None


PLAN = 200_000  # parts of schedule drawn up front (about 3 MB); a longer run repeats it
