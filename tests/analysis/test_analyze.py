"""The analysis finds the simulated line's hidden drivers and a window whose true fail rate is low."""

from __future__ import annotations

import json

import pytest

from analysis import analyze
from analysis.report import write_report
from tests.analysis.conftest import true_window_rate

pytestmark = pytest.mark.slow  # about 15 s: real cross-validated fits


@pytest.fixture(scope="module")
def result(line_run):
    records, _ = line_run
    return analyze(records, network=False)


def test_true_drivers_rank_above_irrelevant_and_correlated_parameters(result) -> None:
    assert result.status == "ok", result.message
    names = [d.name for d in result.drivers]
    true = {"belt_speed", "temperature", "tool_wear"}
    assert set(names[:3]) == true
    assert {d.name for d in result.top_drivers} == true  # motor_current follows belt speed, and is no driver
    assert result.model["cv_auc"] > 0.6
    assert all(d.low > 0 for d in result.top_drivers)


def test_each_defect_class_gets_its_own_driver(result) -> None:
    by_label = {c["label"]: c for c in result.classes}
    expected = {"scratch": "belt_speed", "stain": "temperature", "pit": "tool_wear"}
    for label, driver in expected.items():
        assert by_label[label]["status"] == "ok"
        assert by_label[label]["drivers"][0]["name"] == driver
    rare = [c for c in result.classes if c["fails"] < 20]
    assert rare and all(c["status"] == "inconclusive" for c in rare)  # too few to rank, and says so


def test_the_window_lies_where_the_true_fail_rate_is_low(result, line_run) -> None:
    records, line = line_run
    w = result.window
    assert w is not None and set(w.ranges) == {"belt_speed", "temperature", "tool_wear"}
    for name, (a, b) in w.ranges.items():  # never outside what the line ran
        seen = [r.process[name] for r in records]
        assert min(seen) <= a < b <= max(seen)
    truth = true_window_rate(line, records, w.ranges)
    assert truth <= 1.25 * 0.02  # the best achievable is the background rate
    assert w.current > 3 * truth
    assert w.spread[0] <= w.predicted <= 1.5 * w.spread[1]  # the final model within its fold models' range


def test_report_and_summary_are_written(result, tmp_path) -> None:
    html, summary = write_report(result, tmp_path / "out")
    data = json.loads(summary.read_text())
    assert data["status"] == "ok" and data["window"]["ranges"]
    assert [d["name"] for d in data["drivers"]][:3] == [d.name for d in result.drivers][:3]
    page = html.read_text()
    assert page.count("<img") >= 4 and "Suggested window" in page and "belt_speed" in page
