"""Parts of the simulated line whose process drives defects, as the analysis reads them from the log."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import PartRecord
from datasets.simulator import GOOD, LineSimulator
from datasets.simulator.process import ProcessDrivers


def simulated_records(n: int, seed: int = 0, background: float = 0.02) -> tuple[list[PartRecord], LineSimulator]:
    """``n`` parts with the simulator's truth as the verdict (no rendering: the labels are decided cheaply)."""
    line = LineSimulator(defect_rate=background, process=ProcessDrivers(seed=seed), seed=seed, start_time=0.0,
                         rate=0.1)
    records = []
    for i in range(n):
        label = line.decide(i)[0]
        records.append(PartRecord(ts=line.timestamp(i), station="s1", verdict="pass" if label == GOOD else "fail",
                                  label=label, process=line.process_params(i)))
    return records, line


def true_window_rate(line: LineSimulator, records: list[PartRecord], ranges: dict[str, tuple[float, float]]) -> float:
    """The simulator's fail rate with the window's settings spread over it, the other parameters as they ran."""
    rng = np.random.default_rng(1)
    params = {k: np.array([r.process[k] for r in records], float) for k in ("belt_speed", "temperature", "tool_wear")}
    for k, (a, b) in ranges.items():
        if k in params:
            params[k] = rng.uniform(a, b, len(records))
    return float(line.fail_probability(params).mean())


@pytest.fixture(scope="module")
def line_run() -> tuple[list[PartRecord], LineSimulator]:
    return simulated_records(3000)
