"""Process parameters per part: validated, stored with the verdict, queryable, analysed for the QA page."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from serving.metadata import MAX_PROCESS_KEYS, MetadataError, parse_process
from serving.verdict_store import VerdictQueries, VerdictRecord, store_rows
from tests.analysis.conftest import simulated_records
from tests.serving.conftest import jpeg

PROCESS = {"belt_speed": 1.25, "temperature": 204.5, "tool_id": "T3", "cooling": True, "lot": None}


@pytest.mark.parametrize("raw, message", [
    (json.dumps({"a": {"b": 1}}), "nested"),
    (json.dumps({"a": [1, 2]}), "nested"),
    (json.dumps({f"k{i}": i for i in range(MAX_PROCESS_KEYS + 1)}), "at most 32"),
    (json.dumps({"tool": "x" * 65}), "longer than 64"),
    ('{"a": NaN}', "finite"),
    ("[1, 2]", "JSON object"),
    ("{broken", "not valid JSON"),
])
def test_bad_process_parameters_are_refused_with_the_rule(raw: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        parse_process(raw)


def test_process_parameters_are_stored_echoed_and_queryable(make_client, log_db) -> None:
    with make_client(**log_db.settings()) as client:
        r = client.post("/v1/inspect", content=jpeg(1), headers={"Content-Type": "image/jpeg", "X-Station-Id": "s1",
                                                                  "X-Process": json.dumps(PROCESS)})
        assert r.status_code == 200 and r.json()["process"] == PROCESS
        q = client.post("/v1/inspect", content=jpeg(2), params={"process": json.dumps({"belt_speed": 0.9})},
                        headers={"Content-Type": "image/jpeg", "X-Station-Id": "s1"})
        assert q.status_code == 200 and q.json()["process"] == {"belt_speed": 0.9}
        bad = client.post("/v1/inspect", content=jpeg(3), headers={"Content-Type": "image/jpeg",
                                                                    "X-Process": '{"a": {"b": 1}}'})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_process"
        client.app.state.service.verdict_log.flush()
        rows = client.get("/v1/verdicts").json()["verdicts"]
        assert [r["process"] for r in rows] == [{"belt_speed": 0.9}, PROCESS]  # the refused one left no row
        assert [r["process"] for r in client.get("/v1/verdicts?process=tool_id=T3").json()["verdicts"]] == [PROCESS]
        assert len(client.get("/v1/verdicts", params={"process": "belt_speed=0.9"}).json()["verdicts"]) == 1
        assert client.get("/v1/verdicts", params={"process": "tool_id=T4"}).json()["verdicts"] == []
        for bad in ('a"b=1', "\x00=1", "no-equals-sign"):
            assert client.get("/v1/verdicts", params={"process": bad}).status_code == 422
    rows = VerdictQueries(log_db.where).for_analysis(stations=["s1"])
    assert [r["process"] for r in rows] == [PROCESS, {"belt_speed": 0.9}]  # oldest first


def test_batch_parts_share_the_process_parameters(make_client) -> None:
    with make_client() as client:
        files = [("files", (f"p{i}.jpg", jpeg(i), "image/jpeg")) for i in range(3)]
        r = client.post("/v1/inspect/batch", files=files, headers={"X-Process": json.dumps({"oven": 2})})
        assert r.status_code == 200
        assert [it["result"]["process"] for it in r.json()["items"]] == [{"oven": 2}] * 3


def _log_simulated_line(db, n: int) -> None:
    """``n`` verdicts of the simulated line whose belt speed, temperature and tool wear drive defects."""
    records, _ = simulated_records(n)
    store_rows(db, [VerdictRecord(ts=r.ts, request_id=uuid.uuid4().hex, station="press-2", part_id=None,
                                image_sha256="0" * 64, verdict=r.verdict, label=r.label, confidence=0.9,
                                defect_score=0.9 if r.verdict == "fail" else 0.1, scores={}, model_name="m",
                                model_version="1", latency_ms=1.0, batch_size=1, process=r.process).row()
                    for r in records])


def _drivers(client) -> dict:
    client.get("/v1/process/drivers")  # starts the refresh
    deadline = time.monotonic() + 120
    while (body := client.get("/v1/process/drivers").json())["computing"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return body


@pytest.mark.slow
def test_the_qa_page_gets_each_stations_drivers_computed_in_the_background(make_client, tmp_path) -> None:
    with make_client() as client:
        first = client.get("/v1/process/drivers").json()
        assert first["stations"] == [] and first["updated"] is None  # nothing computed yet: nothing claimed
        for i in range(30):  # a station that sends few parts: too little to say anything
            r = client.post("/v1/inspect", content=jpeg(i), headers={
                "Content-Type": "image/jpeg", "X-Station-Id": "press-1", "X-Process": json.dumps({"speed": i % 7})})
            assert r.status_code == 200
        client.app.state.service.verdict_log.flush()
        _log_simulated_line(tmp_path / "verdicts.sqlite", 4000)
        _drivers(client)
        client.app.state.process_drivers._updated = None  # stale: the next request refreshes
        body = _drivers(client)
    assert body["error"] is None and body["updated"] is not None
    by = {s["station"]: s for s in body["stations"]}
    assert by["press-1"]["status"] == "inconclusive" and "at least 200" in by["press-1"]["message"]  # never a guess
    line = by["press-2"]
    assert line["status"] == "ok" and line["parts"] == 4000
    assert {d["name"] for d in line["drivers"]} == {"belt_speed", "temperature", "tool_wear"}
    assert set(line["window"]["ranges"]) == {"belt_speed", "temperature", "tool_wear"}
