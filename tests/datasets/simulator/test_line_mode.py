"""Line mode: defect rate, scheduled events and per-part ground truth, as monitoring will rely on."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.simulator import GOOD, LightingDrift, LineSimulator, SimulationError, ToolFault, parse_event

SIZE = (64, 80)


def test_parts_are_reproducible_by_index() -> None:
    a = LineSimulator("flange", seed=3, size=SIZE, defect_rate=0.5, n=6)
    parts = list(a)
    again = LineSimulator("flange", seed=3, size=SIZE, defect_rate=0.5).part(4)
    assert [p.index for p in parts] == list(range(6))
    assert np.array_equal(parts[4].part.image, again.part.image) and parts[4].part.label == again.part.label


def test_defect_rate_and_tool_fault_schedule() -> None:
    line = LineSimulator("steel", seed=0, size=SIZE, defect_rate=0.05, events=[ToolFault(400, "crack", rate=0.5)])
    before = [line.decide(i) for i in range(400)]
    after = [line.decide(i) for i in range(400, 800)]
    assert 5 <= sum(lab != GOOD for lab, *_ in before) <= 40
    assert all(cause != "tool_fault" for _, cause, *_ in before)
    cracks_after = sum(lab == "crack" for lab, *_ in after)
    assert 150 <= cracks_after <= 260  # about half, on top of the background rate
    assert all("tool_fault" in ev for *_, ev in after)
    faulted = [d for d in after if d[1] == "tool_fault"]
    assert faulted and all(lab == "crack" for lab, *_ in faulted)


def test_tool_fault_ends() -> None:
    line = LineSimulator("steel", seed=0, size=SIZE, defect_rate=0.0, events=[ToolFault(10, "pit", 1.0, end=20)])
    labels = [line.decide(i)[0] for i in range(30)]
    assert labels[:10] == [GOOD] * 10 and labels[10:20] == ["pit"] * 10 and labels[20:] == [GOOD] * 10


def test_lighting_drift_ramps_the_gain_without_changing_labels() -> None:
    drift = LightingDrift(100, gain=0.5, ramp=50)
    quiet = LineSimulator("flange", seed=1, size=SIZE, defect_rate=0.2)
    line = LineSimulator("flange", seed=1, size=SIZE, defect_rate=0.2, events=[drift])
    assert line.decide(99)[2] == 1.0 and line.decide(124)[2] == pytest.approx(0.75, abs=0.011)
    assert line.decide(150)[2] == pytest.approx(0.5) and line.decide(900)[2] == pytest.approx(0.5)
    assert [line.decide(i)[0] for i in range(300)] == [quiet.decide(i)[0] for i in range(300)]
    dark, bright = line.part(200).part.image.mean(), quiet.part(200).part.image.mean()
    assert dark < 0.7 * bright


def test_timestamps_follow_the_line_rate() -> None:
    line = LineSimulator("flange", size=SIZE, rate=4.0, start_time=1000.0, n=3)
    assert [p.timestamp for p in line] == [1000.0, 1000.25, 1000.5]


def test_parse_event() -> None:
    assert parse_event("lighting_drift@500:gain=0.6,ramp=200") == LightingDrift(500, 0.6, 200)
    assert parse_event("tool_fault@10:defect=crack,rate=0.4,end=90") == ToolFault(10, "crack", 0.4, 90)
    assert parse_event("tool_fault@7") == ToolFault(7)
    for bad in ("tool_fault", "smoke@3", "tool_fault@x", "lighting_drift@3:defect=crack", "tool_fault@3:rate=lots"):
        with pytest.raises(SimulationError):
            parse_event(bad)


def test_invalid_line_settings_are_refused() -> None:
    with pytest.raises(SimulationError):
        LineSimulator("steel", size=SIZE, events=[ToolFault(0, "missing_hole")])
    with pytest.raises(SimulationError):
        LineSimulator("steel", size=SIZE, defect_rate=1.5)
