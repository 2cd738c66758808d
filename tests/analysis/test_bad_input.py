"""Untidy process data gets a clear note or a clear refusal, never a crash or a confident answer."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import PartRecord, analyze
from analysis.table import build_table


def _records(n: int, fail_every: int = 5, **columns) -> list[PartRecord]:
    out = []
    for i in range(n):
        process = {k: (v(i) if callable(v) else v) for k, v in columns.items()}
        out.append(PartRecord(ts=float(i), station="s", verdict="fail" if i % fail_every == 0 else "pass",
                              label="scratch" if i % fail_every == 0 else "good", process=process))
    return out


def test_missing_and_non_numeric_values_are_noted_and_kept_as_missing() -> None:
    def temp(i: int):
        if i % 10 == 3:
            return None
        return "hot" if i == 7 else 200.0 + i % 13

    t = build_table(_records(300, temperature=temp, lot=lambda i: f"L{i % 3}"))
    col = t.columns[t.column("temperature")]
    assert col.kind == "numeric" and col.missing == 31  # 30 missing + 1 "hot"
    assert any("'hot'" in n and "temperature" in n for n in t.notes)
    assert t.columns[t.column("lot")].kind == "categorical"


def test_numbers_sent_as_text_are_numbers() -> None:
    t = build_table(_records(50, speed=lambda i: f"{1 + i / 100:.2f}"))
    assert t.columns[0].kind == "numeric" and np.nanmax(t.X[:, 0]) == pytest.approx(1.49)


@pytest.mark.parametrize("column, why", [
    (lambda i: 5.0, "same value"),
    (lambda i: "A", "same value"),
    (lambda i: f"serial-{i}", "identifier"),
    (lambda i: 1.0 * i if i % 3 == 0 else None, "missing on"),
])
def test_useless_columns_are_left_out_with_the_reason(column, why) -> None:
    t = build_table(_records(300, bad=column, speed=lambda i: i % 7))
    assert t.names == ["speed"]
    assert any(n.startswith("bad:") and why in n for n in t.notes)


def test_too_few_parts_is_inconclusive() -> None:
    res = analyze(_records(120, speed=lambda i: i % 7))
    assert res.status == "inconclusive" and "only 120 parts" in res.message and res.window is None


def test_too_few_failures_is_inconclusive() -> None:
    res = analyze(_records(1000, fail_every=100, speed=lambda i: i % 7))
    assert res.status == "inconclusive" and "only 10 of 1000 parts failed" in res.message


def test_no_process_parameters_says_how_to_send_them() -> None:
    recs = [PartRecord(ts=float(i), station="s", verdict="pass", label="good", process=None) for i in range(50)]
    res = analyze(recs)
    assert res.status == "inconclusive" and "X-Process" in res.message and res.without_process == 50
    assert analyze([]).message == "no verdicts in the selected range"


def test_nothing_left_after_the_checks_is_inconclusive() -> None:
    res = analyze(_records(400, constant=1.0))
    assert res.status == "inconclusive" and "no usable process parameter" in res.message
    assert any("constant" in n for n in res.notes)


def test_parameters_that_explain_nothing_give_a_weak_answer_without_a_window() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=2000)
    fails = rng.random(2000) < 0.2  # failures independent of the parameters
    recs = [PartRecord(ts=float(i), station="s", verdict="fail" if fails[i] else "pass", label="scratch",
                       process={"noise": float(noise[i]), "other": float(rng.normal())}) for i in range(2000)]
    res = analyze(recs, network=False, per_class=False)
    assert res.status == "weak" and "explain little" in res.message
    assert res.window is None and not res.top_drivers


def test_a_flood_of_parameter_names_is_bounded() -> None:
    recs = [PartRecord(ts=float(i), station="s", verdict="pass", label="good",
                       process={"speed": i % 7, **{f"k{i}_{j}": 1 for j in range(20)}}) for i in range(300)]
    t = build_table(recs)
    assert len(t.columns) <= 1 and any("more parameter names" in n for n in t.notes)  # speed; the rest noise
