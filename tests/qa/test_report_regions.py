"""A QA run with a defect-map model keeps each verdict's regions: in verdicts.csv and .jsonl, and
drawn as boxes over the thumbnails of report.html."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
from typer.testing import CliRunner

from defectscope.cli import app
from tests.qa.test_report import _chromium, table_rows
from tests.support import crack_frame, encode, make_map_bundle


@pytest.fixture(scope="module")
def map_bundle(tmp_path_factory):
    return make_map_bundle(tmp_path_factory.mktemp("map") / "b", crack_frame(), onnx=False)


def test_regions_reach_the_csv_the_jsonl_and_the_report(map_bundle, tmp_path):
    lot = tmp_path / "lot"
    lot.mkdir()
    (lot / "cracked.png").write_bytes(encode(crack_frame()))
    for s in range(1, 4):
        (lot / f"part{s}.png").write_bytes(encode(crack_frame(seed=s, at=(80 + 60 * s, 90))))
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["inspect", str(lot), "--model", str(map_bundle.path), "--out", str(out)])
    assert r.exit_code in (0, 1), r.output
    rows = {json.loads(line)["path"]: json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()}
    cracked = next(v for k, v in rows.items() if k.endswith("cracked.png"))
    assert cracked["verdict"] == "fail" and cracked["regions"]
    for row in rows.values():
        assert bool(row["regions"]) == (row["verdict"] in ("fail", "review"))
    table = {row["path"]: row for row in csv.DictReader((out / "verdicts.csv").open())}
    box = cracked["regions"][0]["box"]
    cell = next(v for k, v in table.items() if k.endswith("cracked.png"))["regions"]
    assert cell.startswith(f"{cracked['regions'][0]['label']} {','.join(map(str, box))} ")
    html = (out / "report.html").read_text()
    shown = next(r for r in table_rows(html) if r["path"].endswith("cracked.png"))["regions"]
    assert shown[0]["box"] == box and "defect regions (frame pixels)" in html
    if _chromium() is None:
        return
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", (out / "report.html").as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count('class="box"') >= 1 and f"at {box[0]},{box[1]} ({box[2]}x{box[3]} px)" in dom
