"""A station sends each part's process parameters: from the simulated line, or a sidecar table for a folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from serving.config import load_settings
from serving.process_sidecar import SidecarError, read_process_table, with_process
from serving.server import start_in_background
from serving.station import StationConfig, open_frames, run_station


def _folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "lot-7"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        where = folder / "sub" if i == 0 else folder
        cv2.imwrite(str(where / f"part{i}.png"), (rng.random((40, 50, 3)) * 255).astype(np.uint8))
    return folder


def test_a_csv_sidecar_goes_with_each_image_to_the_log(tmp_path: Path, predictor) -> None:
    folder = _folder(tmp_path, 3)
    table = tmp_path / "process.csv"
    table.write_text("image,temperature,tool_id,note\nsub/part0.png,201.5,T1,\npart1.png,hot,T2,x\n")
    db = tmp_path / "v.sqlite"
    with start_in_background(load_settings(port=0, verdict_db=db, auth_disabled=True), predictor) as server:
        cfg = StationConfig(api=server.url, station_id="oven-line", unsent_path=None)
        with open_frames(str(folder), rate=None) as frames:
            summary = run_station(with_process(frames, read_process_table(table), folder), cfg)
    assert summary.parts == 3 and summary.counts["error"] == 0
    with sqlite3.connect(db) as conn:
        stored = [json.loads(p) if p else None for (p,) in conn.execute("SELECT process FROM verdicts ORDER BY id")]
    # sorted folder order: part1, part2, sub/part0; part2 has no row and goes without parameters
    assert stored == [{"temperature": "hot", "tool_id": "T2", "note": "x"}, None,
                      {"temperature": 201.5, "tool_id": "T1", "note": None}]


def test_json_sidecars_in_both_shapes(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps([{"image": "p.png", "speed": 1.2}]))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"p.png": {"speed": 1.2}}))
    assert read_process_table(a) == read_process_table(b) == {"p.png": {"speed": 1.2}}


@pytest.mark.parametrize("name, text, message", [
    ("t.csv", "", "empty"),
    ("t.csv", "image,a\np.png,1,2\n", "line 2: 3 cells"),
    ("t.json", "[{\"speed\": 1}]", "no 'image' key"),
    ("t.json", "{\"p.png\": {\"a\": {\"b\": 1}}}", "nested"),
    ("t.json", "{not json", "cannot read"),
    ("t.json", "[]", "lists no images"),
    ("t.csv", "image,a\n", "lists no images"),
])
def test_a_bad_sidecar_fails_before_the_first_image_with_the_reason(tmp_path: Path, name, text, message) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SidecarError, match=message):
        read_process_table(path)
    with pytest.raises(SidecarError, match="cannot read"):
        read_process_table(tmp_path / "missing.csv")


def test_the_simulated_line_sends_its_state(tmp_path: Path, predictor) -> None:
    from datasets.simulator.process import ProcessDrivers

    db = tmp_path / "v.sqlite"
    with start_in_background(load_settings(port=0, verdict_db=db, auth_disabled=True), predictor) as server:
        cfg = StationConfig(api=server.url, station_id="sim", count=4, unsent_path=None)
        with open_frames("sim", rate=None, size=(64, 80), process=ProcessDrivers()) as frames:
            run_station(frames, cfg)
    with sqlite3.connect(db) as conn:
        stored = [json.loads(p) for (p,) in conn.execute("SELECT process FROM verdicts ORDER BY id")]
    assert len(stored) == 4 and set(stored[0]) == set(ProcessDrivers().names)
