"""The service's line monitor: verdicts in, alarm episodes out to SQLite, metrics and a webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import generate_latest

from datasets.simulator import GOOD, LineSimulator, ToolFault
from inspection.card import ModelCard
from inspection.preprocess import PreprocessConfig
from inspection.types import Outcome, Verdict
from serving.config import load_settings
from serving.metrics import ServiceMetrics
from serving.monitor import LineMonitor, alarm_db_path
from serving.server import free_port
from tests.serving.conftest import metric


def _card(version: str) -> ModelCard:
    return ModelCard(name="m", version=version, arch="mobilenet_v3_small", classes=("good", "scratch"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(17, 11)))


def _verdict(outcome: str, score: float = 0.01) -> Verdict:
    return Verdict(frame_id="f", source="", outcome=Outcome(outcome), label="x", confidence=0.9,
                   defect_score=score, scores={}, model_name="m", model_version="v", timings_ms={})


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alarms", _Hook.received
    server.shutdown()


def _feed(mon: LineMonitor, station: str, card: ModelCard, sim: LineSimulator, parts: range) -> list:
    events = []
    for i in parts:
        outcome = "pass" if sim.decide(i)[0] == GOOD else "fail"
        events += [(i, ev) for ev in mon.observe(station, _verdict(outcome), card, float(i))]
    return events


def test_tool_fault_alarm_is_logged_counted_and_posted_once(tmp_path: Path, webhook, log_db):
    url, received = webhook
    settings = load_settings(auth_disabled=True, alarm_webhook=url, **log_db.settings())
    metrics = ServiceMetrics(8)
    mon = LineMonitor(settings, metrics)
    mon.start()
    card = _card("v1")
    sim = LineSimulator("flange", seed=11, defect_rate=0.05, events=[ToolFault(700, rate=0.5, end=800)])
    events = _feed(mon, "cell-7", card, sim, range(1400))
    mon.close()  # flushes the alarm log and the webhook
    assert [(e.kind, e.state) for _, e in events] == [("fail_rate", "raised"), ("fail_rate", "cleared")]
    assert 700 <= events[0][0] < 760
    db = settings.database(alarm_db_path(settings))
    assert db.where() == (str(tmp_path / "defectscope-alarms.sqlite") if log_db.kind == "sqlite" else
                          settings.database(None).where())  # the shared server when one is set
    rows = db.select("SELECT station, model_version, kind, state FROM alarms ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [("cell-7", "v1", "fail_rate", "raised"),
                                                  ("cell-7", "v1", "fail_rate", "cleared")]
    assert [(r["event"], r["station"]) for r in received] == [("alarm.raised", "cell-7"), ("alarm.cleared", "cell-7")]
    text = generate_latest(metrics.registry).decode()  # labels come out sorted by name
    assert metric(text, "defectscope_alarm_events_total", kind="fail_rate", state="raised", station="cell-7") == 1
    assert metric(text, "defectscope_alarms_active", kind="fail_rate", station="cell-7") == 0
    assert mon.active() == [] and [r["state"] for r in mon.recent()] == ["cleared", "raised"]


def test_an_unreachable_webhook_never_blocks_verdicts_and_is_counted(tmp_path: Path):
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    settings = load_settings(auth_disabled=True, verdict_db="", alarm_webhook=dead, alarm_webhook_timeout_s=1,
                             spc_baseline=20, spc_window=10)
    metrics = ServiceMetrics(8)
    mon = LineMonitor(settings, metrics)
    mon.start()
    card = _card("v1")
    for i in range(20):
        mon.observe("a", _verdict("pass"), card, float(i))
    raised = [e for i in range(20) for e in mon.observe("a", _verdict("fail"), card, float(20 + i))]
    assert [e.state for e in raised] == ["raised"]
    assert mon.active()[0]["station"] == "a"
    mon.close()
    assert metrics.webhook_failures._value.get() == 1
    assert mon.recent()[0]["kind"] == "fail_rate"  # kept in memory when there is no alarm database


def test_each_station_and_model_version_has_its_own_baseline(tmp_path: Path):
    settings = load_settings(auth_disabled=True, verdict_db="", spc_baseline=50, spc_window=10)
    mon = LineMonitor(settings)
    for i in range(60):
        mon.observe("a", _verdict("fail" if i % 2 else "pass"), _card("v1"), float(i))  # 50 % fails is normal here
        mon.observe("b", _verdict("pass"), _card("v1"), float(i))
    # a new model version starts learning again instead of judging against the old model's rate
    assert mon.observe("a", _verdict("fail"), _card("v2"), 61.0) == []
    charts = {(c["station"], c["model_version"]): c for c in mon.charts()}
    assert set(charts) == {("a", "v1"), ("b", "v1"), ("a", "v2")}
    assert charts[("a", "v1")]["fail_rate"]["centre"] == pytest.approx(0.5, abs=0.05)
    assert charts[("a", "v2")]["fail_rate"]["baseline"] == {"parts": 1, "needed": 50, "done": False}
    assert mon.active() == []  # no alarm from the 50 % station: its own baseline says that is normal


def test_an_alarm_of_a_retired_model_version_is_cleared_with_a_reason_not_dropped(tmp_path: Path):
    settings = load_settings(auth_disabled=True, verdict_db="", spc_baseline=20, spc_window=10)
    mon = LineMonitor(settings)
    mon.start()
    for i in range(20):
        mon.observe("a", _verdict("pass"), _card("v1"), float(i))
    for i in range(10):
        mon.observe("a", _verdict("fail"), _card("v1"), 20.0 + i)
    assert [a["kind"] for a in mon.active()] == ["fail_rate"]
    mon.observe("a", _verdict("pass"), _card("v2"), 40.0)
    assert mon.active(), "the previous version's chart is kept across one reload"
    mon.observe("a", _verdict("pass"), _card("v3"), 41.0)  # v1 retires now
    assert mon.active() == []
    mon.alarm_log.flush()
    cleared = [e for e in mon.recent() if e["state"] == "cleared"]
    assert cleared and "no longer serves" in cleared[0]["message"]
    mon.close()
