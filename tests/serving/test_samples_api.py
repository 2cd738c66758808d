"""POST /v1/samples and POST /v1/verdicts/{id}/label: labelled samples into the sample store."""

from __future__ import annotations

import time
from pathlib import Path

from datasets.layout import Dataset
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg
from tests.support import png_bomb

KEYS = {"auth_disabled": False, "station_keys": STATION_KEY, "engineer_keys": ENGINEER_KEY}
ENG = {"X-API-Key": ENGINEER_KEY}


def post_sample(client, data: bytes, label: str, **fields: str):
    return client.post("/v1/samples", headers=ENG, files={"file": ("x.jpg", data, "image/jpeg")},
                       data={"label": label, **fields})


def test_sample_is_stored_content_addressed_and_deduplicated(make_client, tmp_path: Path) -> None:
    store = tmp_path / "samples"
    with make_client(samples_dir=store, **KEYS) as client:
        r = post_sample(client, jpeg(1), "scratch", note="escape, lot A17", station="cam-2", verdict_id="7")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["created"] is True and body["label"] == "scratch" and body["split"] == "train"
        assert body["path"] == f"images/scratch/{body['sha256']}.jpg"
        assert (store / body["path"]).read_bytes() == jpeg(1)
        again = post_sample(client, jpeg(1), "scratch")
        assert again.status_code == 201 and again.json()["created"] is False
        (listed,) = client.get("/v1/samples", headers=ENG).json()["samples"]  # the index lists it once
        assert (listed["sha256"], listed["label"], listed["station"], listed["verdict_id"]) == \
            (body["sha256"], "scratch", "cam-2", 7) and listed["note"] == "escape, lot A17"
        assert client.get("/v1/samples", headers={"X-API-Key": STATION_KEY}).status_code == 403
    ds = Dataset.load(store)
    assert len(ds.samples) == 1
    assert '"station": "cam-2"' in ds.samples[0].source and '"verdict_id": 7' in ds.samples[0].source
    assert set(ds.info.classes) == {"good", "scratch", "dent"} and ds.info.pass_classes == ("good",)


def test_bad_samples_are_refused_and_nothing_is_written(make_client, tmp_path: Path) -> None:
    store = tmp_path / "samples"
    with make_client(samples_dir=store, **KEYS) as client:
        for label in ("../etc", "a/b", ".hidden", "", "x" * 65, "good\n"):
            r = post_sample(client, jpeg(2), label)
            assert r.status_code == 422, (label, r.text)
        r = post_sample(client, jpeg(2), "crack")
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_class"
        for data in (b"", b"not an image at all", jpeg(3)[:200]):
            r = post_sample(client, data, "scratch")
            assert r.status_code == 422 and r.json()["error"]["code"] in ("undecodable_image", "image_too_large")
        r = post_sample(client, png_bomb(), "scratch")
        assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_large"
        r = client.post("/v1/samples", headers={"X-API-Key": STATION_KEY},
                        files={"file": ("x.jpg", jpeg(2), "image/jpeg")}, data={"label": "scratch"})
        assert r.status_code == 403
        r = client.post("/v1/samples", headers=ENG, data={"label": "scratch"})
        assert r.status_code in (415, 422)
    assert not (store / "images").exists() or not any(p.is_file() for p in (store / "images").rglob("*"))


def test_new_class_only_when_asked(make_client, tmp_path: Path) -> None:
    store = tmp_path / "samples"
    with make_client(samples_dir=store, **KEYS) as client:
        r = post_sample(client, jpeg(4), "missing_hole", new_class="true")
        assert r.status_code == 201 and r.json()["new_class"] is True
        r = post_sample(client, jpeg(4), "dent")  # same bytes, other label: a conflict, not a silent relabel
        assert r.status_code == 409 and r.json()["error"]["code"] == "label_conflict"
    assert Dataset.load(store).info.classes[-1] == "missing_hole"


def _wait_for_rows(client, n: int) -> list[dict]:
    for _ in range(100):
        rows = client.get("/v1/verdicts", headers=ENG).json()["verdicts"]
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    raise AssertionError("verdicts were not logged")


def test_label_a_logged_verdict(make_client, tmp_path: Path, log_db) -> None:
    store = tmp_path / "samples"
    with make_client(samples_dir=store, keep_images_dir=tmp_path / "kept", keep_images_for="fail,review,pass",
                     **KEYS, **log_db.settings()) as client:
        client.post("/v1/inspect", content=jpeg(5), headers={"X-API-Key": STATION_KEY, "Content-Type": "image/jpeg",
                                                             "X-Station-Id": "cam-9"})
        row = _wait_for_rows(client, 1)[0]
        url = f"/v1/verdicts/{row['id']}/label"
        r = client.post(url, headers=ENG, json={"label": "scratch", "note": "QA: confirmed escape"})
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == row["image_sha256"] and r.json()["created"] is True
        assert (store / r.json()["path"]).read_bytes() == jpeg(5)
        assert client.post(url, headers=ENG, json={"label": "scratch"}).json()["created"] is False
        assert client.post("/v1/verdicts/999999/label", headers=ENG, json={"label": "scratch"}).status_code == 404
        assert client.post(url, headers=ENG, json={"label": "../x"}).status_code == 422
        bad = client.post(url, headers=ENG, json={"label": "crack"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_class"
        assert client.post(url, headers={"X-API-Key": STATION_KEY}, json={"label": "scratch"}).status_code == 403
        listed = client.get("/v1/samples", headers=ENG, params={"station": "cam-9"}).json()["samples"]
        assert [(x["via"], x["verdict_id"], x["label"]) for x in listed] == [("verdict", row["id"], "scratch")]
        assert client.get("/v1/samples", headers=ENG, params={"label": "dent"}).json()["samples"] == []
    source = Dataset.load(store).samples[0].source
    assert '"via": "verdict"' in source and '"station": "cam-9"' in source and "confirmed escape" in source


def test_label_without_kept_image_is_409(make_client, tmp_path: Path) -> None:
    with make_client(samples_dir=tmp_path / "samples", **KEYS) as client:  # no keep_images_dir
        client.post("/v1/inspect", content=jpeg(6), headers={"X-API-Key": STATION_KEY, "Content-Type": "image/jpeg"})
        row = _wait_for_rows(client, 1)[0]
        r = client.post(f"/v1/verdicts/{row['id']}/label", headers=ENG, json={"label": "scratch"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "image_not_kept"
