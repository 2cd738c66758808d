"""The simulated line's process parameters drive its defects through a known function."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from datasets.simulator import GOOD, LineSimulator
from datasets.simulator.camera import SimulatedCamera
from datasets.simulator.process import ProcessDrivers


def test_parameters_are_deterministic_and_reported_with_each_part() -> None:
    a = LineSimulator(process=ProcessDrivers(seed=3), seed=3, start_time=0.0, size=(64, 80))
    b = LineSimulator(process=ProcessDrivers(seed=3), seed=3, start_time=0.0, size=(64, 80))
    assert a.process_params(1234) == b.process_params(1234)
    assert a.decide(77) == b.decide(77)
    part = a.part(5)
    assert part.meta()["process"] == a.process_params(5)
    with SimulatedCamera(n=2, size=(64, 80), process=ProcessDrivers()) as cam:
        assert all("belt_speed" in f.meta["process"] for f in cam)
    assert "process" not in LineSimulator(size=(64, 80)).part(0).meta()  # no drivers, no parameters


def test_defects_follow_the_hidden_function() -> None:
    line = LineSimulator(defect_rate=0.02, process=ProcessDrivers(), start_time=0.0)
    d = line.process
    n = 6000
    params = [line.process_params(i) for i in range(n)]
    labels = [line.decide(i)[0] for i in range(n)]
    speed = np.array([p["belt_speed"] for p in params])
    fast = speed > d.speed_knee + 0.2
    scratches = np.array([lab == "scratch" for lab in labels])
    assert scratches[fast].mean() > 4 * scratches[speed < d.speed_knee].mean()
    wear = np.array([p["tool_wear"] for p in params])
    pits = np.array([lab == "pit" for lab in labels])
    assert pits[wear > d.wear_knee + 300].mean() > 4 * pits[wear < d.wear_knee].mean()
    current = np.array([p["motor_current"] for p in params])
    assert 0.6 < np.corrcoef(speed, current)[0, 1] < 0.95  # correlated with a driver, drives nothing
    truth = line.fail_probability({k: np.array([p[k] for p in params]) for k in d.drivers})
    observed = np.mean([lab != GOOD for lab in labels])
    assert abs(truth.mean() - observed) < 0.02
    best = line.fail_probability({"belt_speed": 1.0, "temperature": 205.0, "tool_wear": 100})
    assert float(best) == pytest.approx(0.02)  # the background rate: no setting removes it
    assert Counter(p["tool_id"] for p in params).keys() == {"T1", "T2", "T3", "T4"}
