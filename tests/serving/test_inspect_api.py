"""The inspect routes through a TestClient: verdicts, bad inputs, batch, metadata, OpenAPI."""

from __future__ import annotations

import numpy as np

from inspection.predictor import Predictor
from tests.serving.conftest import jpeg, metric
from tests.support import png_bomb


def test_inspect_raw_body_matches_in_process_predictor(make_client, predictor: Predictor) -> None:
    data = jpeg(3)
    expected = predictor.inspect(data).verdict
    with make_client() as client:
        r = client.post("/v1/inspect", content=data, headers={"Content-Type": "image/jpeg", "X-Station-Id": "st-7",
                                                               "X-Part-Id": "p-1", "X-Metadata": '{"lot": "A17"}'})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == expected.outcome.value and body["label"] == expected.label
    assert np.allclose([body["scores"][c] for c in predictor.card.classes],
                       [expected.scores[c] for c in predictor.card.classes], atol=1e-5)
    assert body["model"] == {"name": "test-model", "version": predictor.card.version}
    assert body["thresholds"] == {"fail": 0.6, "review": 0.4}
    assert body["image"]["width"] == 131 and body["image"]["height"] == 97 and body["image"]["format"] == "jpeg"
    assert body["station_id"] == "st-7" and body["part_id"] == "p-1" and body["metadata"] == {"lot": "A17"}
    assert set(body["timings_ms"]) >= {"decode", "preprocess", "queue", "inference", "decision", "total"}
    assert len(body["request_id"]) == 32


def test_inspect_multipart_and_query_ids(make_client) -> None:
    with make_client() as client:
        r = client.post("/v1/inspect?station_id=q-st&part_id=q-part",
                        files={"file": ("part.jpg", jpeg(5), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["station_id"] == "q-st" and r.json()["part_id"] == "q-part"


def _error(r) -> str:
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]["code"]


def test_bad_inputs_get_their_4xx(make_client) -> None:
    good = jpeg(1, (17, 23))
    cases = {
        "empty": (b"", "image/jpeg", 422, "empty_image"),
        "random": (np.random.default_rng(0).bytes(3000), "image/jpeg", 422, "undecodable_image"),
        "truncated": (good[: len(good) // 2], "image/jpeg", 422, "undecodable_image"),
        "bomb": (png_bomb(), "image/png", 422, "image_too_large"),
        "wrong type": (good, "text/plain", 415, "unsupported_media_type"),
        "json type": (b'{"a": 1}', "application/json", 415, "unsupported_media_type"),
        "oversize": (b"\xff\xd8" + b"\0" * 5000, "image/jpeg", 413, "payload_too_large"),
    }
    with make_client(max_upload_bytes=4096) as client:
        for name, (data, ctype, status, code) in cases.items():
            r = client.post("/v1/inspect", content=data, headers={"Content-Type": ctype})
            assert (r.status_code, _error(r)) == (status, code), name
        # no Content-Length (chunked upload): the limit still holds while reading
        r = client.post("/v1/inspect", content=iter([b"\xff\xd8" + b"\0" * 3000, b"\0" * 3000]),
                        headers={"Content-Type": "image/jpeg"})
        assert (r.status_code, _error(r)) == (413, "payload_too_large")
        r = client.post("/v1/inspect", files={"other": ("x.jpg", good, "image/jpeg")})
        assert (r.status_code, _error(r)) == (422, "missing_file")
        r = client.post("/v1/inspect", content=good, headers={"Content-Type": "image/jpeg", "X-Metadata": "[1]"})
        assert (r.status_code, _error(r)) == (422, "invalid_metadata")
        r = client.post("/v1/inspect", content=good, headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200  # the service still works after all that
        text = client.get("/metrics").text
    assert metric(text, "defectscope_errors_total", kind="image_too_large") == 1
    assert metric(text, "defectscope_errors_total", kind="payload_too_large") == 2
    assert metric(text, "defectscope_errors_total", kind="internal") == 0


def test_batch_reports_errors_per_item(make_client, predictor: Predictor) -> None:
    files = [("files", ("a.jpg", jpeg(1), "image/jpeg")), ("files", ("bad.jpg", b"nope", "image/jpeg")),
             ("files", ("c.jpg", jpeg(2), "image/jpeg")), ("files", ("t.txt", b"hello", "text/plain"))]
    with make_client() as client:
        r = client.post("/v1/inspect/batch", files=files, headers={"X-Station-Id": "qa"})
        assert client.post("/v1/inspect/batch", content=jpeg(1),
                           headers={"Content-Type": "image/jpeg"}).status_code == 415
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["ok"], body["failed"]) == (2, 2)
    items = body["items"]
    assert [it["filename"] for it in items] == ["a.jpg", "bad.jpg", "c.jpg", "t.txt"]
    assert items[1]["error"]["code"] == "undecodable_image" and items[3]["error"]["code"] == "unsupported_media_type"
    expected = predictor.inspect(jpeg(2)).verdict
    assert items[2]["result"]["label"] == expected.label
    assert abs(items[2]["result"]["defect_score"] - expected.defect_score) < 1e-5


def test_model_health_ready_and_openapi(make_client, predictor: Predictor) -> None:
    with make_client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model"]["version"] == predictor.card.version
        card = client.get("/v1/model").json()
        assert card["classes"] == ["good", "scratch", "dent"] and card["backend"] == "onnx"
        assert card["threads"]["inference"] == predictor.backend.threads >= 1 and card["threads"]["decode"] >= 1
        spec = client.get("/openapi.json").json()
        assert "image/jpeg" in spec["paths"]["/v1/inspect"]["post"]["requestBody"]["content"]
        assert client.get("/nowhere").json()["error"]["code"] == "not_found"


def test_no_model_answers_503(make_client) -> None:
    with make_client(predictor_=None) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        r = client.post("/v1/inspect", content=jpeg(1), headers={"Content-Type": "image/jpeg"})
        assert (r.status_code, _error(r)) == (503, "no_model")
        assert "Retry-After" in r.headers
