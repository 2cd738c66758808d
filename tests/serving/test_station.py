"""The station client: a folder of frames through a real uvicorn, retries, backlog and the unsent file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from inspection.types import Frame
from serving.config import load_settings
from serving.server import free_port, start_in_background
from serving.station import StationClient, StationConfig, open_frames, run_station
from tests.serving.conftest import STATION_KEY


def _frames(n: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [Frame((rng.random((37, 53, 3)) * 255).astype(np.uint8), meta={"label": "good" if i % 2 else "dent"})
            for i in range(n)]


def test_station_feeds_a_folder_through_a_real_server(tmp_path: Path, predictor) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(_frames(5)):
        cv2.imwrite(str(folder / f"part{i:02d}.png"), f.image)
    db = tmp_path / "v.sqlite"
    settings = load_settings(port=0, verdict_db=db, station_keys=STATION_KEY, engineer_keys=STATION_KEY + "-eng")
    seen = []
    with start_in_background(settings, predictor) as server:
        cfg = StationConfig(api=server.url, api_key=STATION_KEY, station_id="line-3", unsent_path=tmp_path / "u.jsonl")
        with open_frames(str(folder), rate=None) as frames:
            summary = run_station(frames, cfg, on_result=seen.append)
    assert summary.parts == 5 and len(summary.latencies_ms) == 5
    assert sum(summary.counts[k] for k in ("pass", "fail", "review")) == 5
    assert summary.percentile(99) is not None and summary.unsent_file is None
    assert [r.part_id for r in seen] == [f"line-3-{i:06d}" for i in range(5)]
    with sqlite3.connect(db) as conn:  # the server's shutdown flushed the verdict log
        rows = conn.execute("SELECT station, part_id FROM verdicts ORDER BY part_id").fetchall()
    assert rows == [("line-3", f"line-3-{i:06d}") for i in range(5)]


def test_station_keeps_parts_while_the_service_is_down_and_resends_them(tmp_path: Path, predictor) -> None:
    port = free_port()
    settings = load_settings(port=port, verdict_db=tmp_path / "v.sqlite", auth_disabled=True)
    started = []

    def line() -> Iterator[Frame]:
        frames = _frames(4)
        yield frames[0]
        yield frames[1]  # both find no service and wait in the backlog
        started.append(start_in_background(settings, predictor))
        yield frames[2]
        yield frames[3]

    cfg = StationConfig(api=f"http://127.0.0.1:{port}", retries=1, backoff=0.01, timeout=5.0,
                        unsent_path=tmp_path / "unsent.jsonl")
    seen = []
    try:
        summary = run_station(line(), cfg, on_result=seen.append)
    finally:
        for s in started:
            s.stop()
    answered = [r for r in seen if r.verdict is not None]
    assert sorted(r.part_id for r in answered) == [f"station-1-{i:06d}" for i in range(4)]
    assert {r.part_id for r in answered if r.resent} == {"station-1-000000", "station-1-000001"}
    assert summary.counts["unsent"] == 0 and not (tmp_path / "unsent.jsonl").exists()
    assert summary.truth_checked == sum(1 for r in answered if r.verdict in ("pass", "fail"))


def test_unanswered_parts_are_written_to_the_unsent_file(tmp_path: Path) -> None:
    cfg = StationConfig(api=f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01, timeout=2.0,
                        unsent_path=tmp_path / "unsent.jsonl")
    summary = run_station(_frames(3), cfg)
    assert summary.counts["unsent"] == 3 and summary.unsent_file == cfg.unsent_path
    records = [json.loads(line) for line in cfg.unsent_path.read_text().splitlines()]
    assert all(r["attempts"] >= 3 for r in records)  # 1 + 2 retries, then a last try for the oldest
    for r in records:
        assert "unreachable" in r["error"]
        assert cv2.imdecode(np.fromfile(r["image"], np.uint8), cv2.IMREAD_COLOR).shape == (37, 53, 3)


def test_a_refusal_is_final_not_retried(make_client, tmp_path: Path) -> None:
    with make_client(auth_disabled=False, station_keys=STATION_KEY) as client:
        station = StationClient(StationConfig(api_key="wrong-key-0123456789", retries=3, unsent_path=None),
                                client=client)
        summary = run_station(_frames(2), station.cfg, client=station)
    assert summary.counts["error"] == 2 and summary.counts["unsent"] == 0
