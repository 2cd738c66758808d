"""A station or service on the ONNX backend never loads torch: start-up stays fast and small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
import cv2, httpx, numpy as np
from serving.config import load_settings
from serving.server import start_in_background
from serving.service import load_predictor

settings = load_settings(auth_disabled=True, model=sys.argv[1], verdict_db=sys.argv[2], port=0, backend="onnx")
image = cv2.imencode(".jpg", np.full((60, 80, 3), 120, np.uint8))[1].tobytes()
with start_in_background(settings, load_predictor(settings)) as server:
    codes = [httpx.post(server.url + "/v1/inspect", content=image, headers={"Content-Type": "image/jpeg"}).status_code
             for _ in range(3)]
    codes.append(httpx.get(server.url + "/v1/model").status_code)
print(json.dumps({"codes": codes, "loaded": sorted(m for m in ("torch", "torchvision") if m in sys.modules)}))
"""


def test_the_onnx_service_answers_without_importing_torch(tiny_bundle, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle.path), str(tmp_path / "v.sqlite")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [200, 200, 200, 200]
    assert result["loaded"] == [], f"the ONNX service imported {result['loaded']}"
