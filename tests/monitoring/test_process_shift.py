"""An SPC alarm says which process parameters moved with it."""

from __future__ import annotations

import numpy as np

from monitoring.process_shift import ProcessShift, describe
from monitoring.spc import SpcConfig, StationMonitor


def test_a_fail_rate_alarm_names_the_parameter_that_moved_and_not_the_others() -> None:
    rng = np.random.default_rng(0)
    mon = StationMonitor(SpcConfig(baseline=300, window=25))
    raised = []
    for i in range(1200):
        fault = i >= 600  # the belt runs faster from part 600, and scratches follow
        process = {"belt_speed": float(rng.normal(1.5 if fault else 1.0, 0.03)),
                   "humidity": float(rng.normal(50, 3)), "tool_id": "T2", "shift": "A" if i < 900 else "B"}
        fail = rng.random() < (0.3 if fault else 0.03)
        raised += [e for e in mon.observe("fail" if fail else "pass", None, float(i), process) if e.state == "raised"]
    [alarm] = [e for e in raised if e.kind == "fail_rate"]
    names = [m["name"] for m in alarm.moved]
    assert names == ["belt_speed"]  # humidity and the tool did not move; the shift changed later
    assert alarm.moved[0]["before"] < 1.05 < 1.2 < alarm.moved[0]["now"] and alarm.moved[0]["shift_sd"] > 5
    assert "moved with it: belt_speed" in alarm.message
    assert alarm.to_dict()["moved"] == list(alarm.moved)


def test_a_categorical_change_counts_and_the_state_stays_bounded() -> None:
    shift = ProcessShift(baseline=50, recent=40)
    for i in range(50):
        shift.observe({"tool_id": f"T{i % 2}", **{f"p{k}": float(k + i % 3) for k in range(100)}})
    assert len(shift.numeric) + len(shift.levels) == 32  # at most MAX_KEYS tracked
    for _ in range(40):
        shift.observe({"tool_id": "T9"})
    moved = shift.moved()
    assert moved[0]["name"] == "tool_id" and moved[0]["level"] == "T9" and moved[0]["share_now"] == 1.0
    assert "tool_id now T9 (100 % of parts, was 0 %)" in describe(moved)


def test_no_parameters_means_no_moves_and_an_unchanged_message() -> None:
    mon = StationMonitor(SpcConfig(baseline=100, window=20))
    rng = np.random.default_rng(1)
    events = []
    for i in range(600):
        events += mon.observe("fail" if rng.random() < (0.5 if i > 300 else 0.02) else "pass", None, float(i))
    raised = [e for e in events if e.state == "raised"]
    assert raised and all(e.moved == () and "moved with it" not in e.message for e in raised)
