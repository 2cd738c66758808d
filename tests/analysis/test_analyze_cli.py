"""``defectscope analyze`` over a real verdict log: the report, the summary, and clear refusals."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from defectscope.cli import app
from serving.verdict_store import VerdictRecord, store_rows
from tests.analysis.conftest import simulated_records

pytestmark = pytest.mark.slow  # about 10 s: a full analysis with per-class models


def _log(path, records) -> None:
    store_rows(path, [VerdictRecord(ts=r.ts, request_id=uuid.uuid4().hex, station=r.station, part_id=None,
                                    image_sha256="0" * 64, verdict=r.verdict, label=r.label, confidence=0.9,
                                    defect_score=0.5, scores={}, model_name="m", model_version="7", latency_ms=1.0,
                                    batch_size=1, process=r.process).row() for r in records])


def test_analyze_writes_a_report_and_a_summary(tmp_path) -> None:
    records, _ = simulated_records(1500)
    db = tmp_path / "v.sqlite"
    _log(db, records)
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["analyze", "--log", str(db), "--out", str(out), "--no-network", "--since", "0",
                                 "--station", "s1", "--model-version", "7"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parts"] == 1500 and summary["scope"]["stations"] == ["s1"]
    assert summary["drivers"][0]["name"] in {"belt_speed", "temperature", "tool_wear"}
    assert "report:" in r.output and (out / "report.html").stat().st_size > 10_000


def test_analyze_refuses_clearly(tmp_path) -> None:
    r = CliRunner().invoke(app, ["analyze", "--log", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 2 and "no verdict log" in r.output
    db = tmp_path / "v.sqlite"
    _log(db, simulated_records(50)[0])
    r = CliRunner().invoke(app, ["analyze", "--log", str(db), "--out", str(tmp_path / "o"), "--since", "yesterday"])
    assert r.exit_code == 2 and "--since" in r.output
    r = CliRunner().invoke(app, ["analyze", "--log", str(db), "--out", str(tmp_path / "o"), "--station", "other"])
    assert r.exit_code == 0 and "no verdicts in the selected range" in r.output
    r = CliRunner().invoke(app, ["analyze", "--log", str(db), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0 and "only 50 parts" in r.output and (tmp_path / "o" / "report.html").is_file()
