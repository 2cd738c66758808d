"""``POST /v1/inspect?explain=true``: the verdict plus a Grad-CAM overlay PNG; nothing extra without it."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from inspection.explain import Explainer
from inspection.predictor import Predictor
from tests.serving.conftest import jpeg


def test_explain_returns_an_overlay_png_at_frame_size(make_client, predictor: Predictor) -> None:
    data = jpeg(4)
    with make_client() as client:
        plain = client.post("/v1/inspect", content=data, headers={"Content-Type": "image/jpeg"})
        r = client.post("/v1/inspect?explain=true", content=data, headers={"Content-Type": "image/jpeg"})
        bad = client.post("/v1/inspect?explain=maybe", content=data, headers={"Content-Type": "image/jpeg"})
    assert plain.status_code == 200 and plain.json()["explanation"] is None
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == plain.json()["verdict"] and body["defect_score"] == plain.json()["defect_score"]
    ex = body["explanation"]
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(ex["overlay_png"]), np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (97, 131, 3) == (ex["height"], ex["width"], 3)
    expected = Explainer(predictor.bundle).explain(predictor.load(data, keep_image=True).image)
    assert ex["target"] == expected.target and tuple(ex["peak"]) == expected.peak
    assert "explain" in body["timings_ms"]
    assert bad.status_code == 422 and "Traceback" not in bad.text
