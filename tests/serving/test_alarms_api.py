"""GET /v1/alarms and /v1/monitor, the invalid verdict over HTTP, and the QA page's own endpoints."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.card import ModelCard
from inspection.models import create_model
from inspection.predictor import Predictor
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityLimits
from inspection.types import Outcome, Verdict
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg
from tests.support import encode
from training.export import save_bundle

KEYS = {"station_keys": STATION_KEY, "engineer_keys": ENGINEER_KEY, "auth_disabled": False}
ENG = {"X-API-Key": ENGINEER_KEY}
ST = {"X-API-Key": STATION_KEY}


def _verdict(outcome: str) -> Verdict:
    return Verdict(frame_id="f", source="", outcome=Outcome(outcome), label="x", confidence=0.9, defect_score=0.01,
                   scores={}, model_name="m", model_version="v", timings_ms={})


def test_alarms_need_a_key_and_show_active_and_recent(make_client, predictor):
    with make_client(**KEYS, spc_baseline=20, spc_window=10) as client:
        assert client.get("/v1/alarms").status_code == 401
        mon = client.app.state.monitor
        station = '<img src=x onerror="alert(1)">'
        for i in range(20):
            mon.observe(station, _verdict("pass"), predictor.card, float(i))
        for i in range(10):
            mon.observe(station, _verdict("fail"), predictor.card, 100.0 + i)
        body = client.get("/v1/alarms", headers=ST).json()
        assert [(a["station"], a["kind"], a["state"]) for a in body["active"]] == [(station, "fail_rate", "raised")]
        mon.alarm_log.flush()
        recent = client.get("/v1/alarms", headers=ST).json()["recent"]
        assert recent[0]["kind"] == "fail_rate" and recent[0]["id"] >= 1 and "control limit" in recent[0]["message"]
        charts = client.get("/v1/monitor", headers=ST).json()
        fr = charts["stations"][0]["fail_rate"]
        assert fr["baseline"]["done"] and fr["points"][-1]["rate"] == 1.0 and fr["points"][-1]["alarm"]
        assert charts["settings"]["window"] == 10
        assert client.get("/metrics").status_code == 401  # it names stations: a key is needed
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {STATION_KEY}"}).text
        assert 'defectscope_alarms_active{kind="fail_rate",station="_img_src_x_onerror__alert_1___"} 1.0' in metrics


def test_every_served_verdict_feeds_its_station_monitor(make_client):
    with make_client() as client:
        for i in range(5):
            r = client.post("/v1/inspect", content=jpeg(i), headers={"Content-Type": "image/jpeg",
                                                                      "X-Station-Id": "cell-3"})
            assert r.status_code == 200
        st = client.get("/v1/monitor", params={"station": "cell-3"}).json()["stations"]
        assert len(st) == 1 and st[0]["parts"] == 5 and sum(st[0]["counts"].values()) == 5


@pytest.fixture(scope="module")
def gated_predictor(tmp_path_factory) -> Predictor:
    """A model whose card has quality limits: a dark frame must come back invalid over HTTP."""
    pre = PreprocessConfig(input_size=(64, 80))
    card = ModelCard(name="gated", version="", arch="mobilenet_v3_small", classes=("good", "scratch"),
                     pass_classes=("good",), preprocess=pre,
                     quality=QualityLimits(brightness=(40.0, 220.0), saturated_max=0.2, sharpness_min=0.01))
    path = tmp_path_factory.mktemp("gated") / "model"
    save_bundle(path, create_model("mobilenet_v3_small", num_classes=2).eval(), card, export=False)
    return Predictor.from_path(path, threads=1)


def test_a_dark_frame_is_invalid_with_its_reason_logged_and_kept(make_client, gated_predictor, tmp_path: Path):
    with make_client(predictor_=gated_predictor, keep_images_dir=tmp_path / "kept") as client:
        dark = encode(np.full((97, 131, 3), 12, np.uint8), ".png")
        r = client.post("/v1/inspect", content=dark, headers={"Content-Type": "image/png", "X-Station-Id": "s1"})
        assert r.status_code == 200
        body = r.json()
        assert body["verdict"] == "invalid" and body["label"] == "too_dark" and "retake" in body["reason"]
        ok = client.post("/v1/inspect", content=jpeg(3), headers={"Content-Type": "image/jpeg"}).json()
        assert ok["verdict"] != "invalid" and ok["reason"] is None
        client.app.state.service.verdict_log.flush()
        rows = client.get("/v1/verdicts", params={"station": "s1"}).json()["verdicts"]
        assert rows[0]["verdict"] == "invalid" and Path(rows[0]["image_path"]).is_file()
        img = client.get(f"/v1/review/verdicts/{rows[0]['id']}/image")
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(img.content, np.uint8), cv2.IMREAD_COLOR).shape[1] == 131
        assert client.get("/v1/monitor?station=s1").json()["stations"][0]["counts"] == {"invalid": 1}


def test_page_is_public_but_its_data_needs_the_right_key(make_client, tmp_path: Path):
    with make_client(**KEYS, keep_images_dir=tmp_path / "kept") as client:
        page = client.get("/ui")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script src=\"/ui/static/app.js\"" in page.text
        assert client.get("/ui/static/app.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/ui/static/..%2Fconfig.py").status_code == 404
        assert client.get("/ui/static/index.html").status_code == 404  # only the listed files
        assert client.get("/v1/review/verdicts/1/image").status_code == 401
        assert client.get("/v1/review/verdicts/1/image", headers=ST).status_code == 403
        assert client.get("/v1/review/verdicts/999/image", headers=ENG).json()["error"]["code"] == "unknown_verdict"
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_upload_of_images_and_zips_answers_each_with_a_heatmap_and_refuses_tricks(make_client, tmp_path: Path):
    evil = tmp_path / "escaped.jpg"
    lot = _zip({f"../../..{evil}": jpeg(1), "sub/b.png": encode(np.full((40, 50, 3), 128, np.uint8)),
                "notes.txt": b"hello", "bomb.png": b"\0" * (3 * 1024 * 1024)})
    with make_client(max_upload_bytes=2 * 1024 * 1024) as client:
        r = client.post("/v1/review/upload", files=[("files", ("lot.zip", lot, "application/zip")),
                                                     ("files", ("x<b>'.jpg", jpeg(2), "image/jpeg")),
                                                     ("files", ("broken.jpg", b"\xff\xd8junk", "image/jpeg"))])
        assert r.status_code == 200
        items = {it["name"]: it for it in r.json()["items"]}
        assert items["x<b>'.jpg"]["result"]["explanation"]["overlay_png"]
        assert items[f"lot.zip!../../..{evil}"]["result"]["verdict"] in ("pass", "fail", "review")
        assert items["lot.zip!notes.txt"]["error"]["code"] == "skipped"
        assert "size limit" in items["lot.zip!bomb.png"]["error"]["message"]
        assert items["broken.jpg"]["error"]["code"] == "undecodable_image"
        assert r.json()["ok"] == 3 and not evil.exists()
        fake = ("x.zip", b"PK\x03\x04 not really", "application/zip")
        bad = client.post("/v1/review/upload", files=[("files", fake)])  # an error row, as the page expects
        assert bad.status_code == 200 and bad.json()["failed"] == 1
        assert "not a readable zip" in bad.json()["items"][0]["error"]["message"]


def test_an_alarm_says_which_process_parameters_moved_and_keeps_it_in_the_log(make_client, predictor):
    with make_client(**KEYS, spc_baseline=40, spc_window=10) as client:
        mon = client.app.state.monitor
        for i in range(40):
            mon.observe("press", _verdict("pass"), predictor.card, float(i), {"speed": 1.0 + i % 3 / 100, "oven": 2})
        for i in range(10):
            mon.observe("press", _verdict("fail"), predictor.card, 100.0 + i, {"speed": 1.6, "oven": 2})
        [active] = client.get("/v1/alarms", headers=ST).json()["active"]
        assert [m["name"] for m in active["moved"]] == ["speed"] and "moved with it: speed" in active["message"]
        mon.alarm_log.flush()
        recent = client.get("/v1/alarms", headers=ST).json()["recent"]
        assert recent[0]["moved"][0]["now"] == 1.6  # read back from the alarm log's SQLite
