"""One pipeline: the same images through the API, a QA run (``inspect --out``) and ``evaluate`` get
identical verdicts, scores, thresholds and quality-gate results."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from datasets.importer import import_dataset
from inspection.card import ModelCard, Thresholds
from inspection.models import create_model
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityLimits
from serving.app import create_app
from serving.config import load_settings
from tests.support import encode
from training.evaluate import evaluate
from training.export import save_bundle


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    import torch

    tmp = tmp_path_factory.mktemp("one-pipeline")
    torch.manual_seed(3)
    card = ModelCard(name="one", version="", arch="mobilenet_v3_small", classes=("good", "scratch"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(48, 64)),
                     thresholds=Thresholds(fail=0.55, review=0.45),
                     quality=QualityLimits(brightness=(40.0, 220.0), saturated_max=0.2, sharpness_min=0.01))
    bundle = save_bundle(tmp / "bundle", create_model("mobilenet_v3_small", num_classes=2).eval(), card).path
    rng = np.random.default_rng(0)
    src = tmp / "src"
    for i in range(8):
        label = "good" if i % 2 else "scratch"
        img = cv2.GaussianBlur(rng.integers(0, 256, (61 + i, 83, 3), dtype=np.uint8), (0, 0), 1.5)
        if i == 3:
            img = (img * 0.05).astype(np.uint8)  # too dark: the gate refuses it
        (src / label).mkdir(parents=True, exist_ok=True)
        (src / label / f"part{i}.png").write_bytes(encode(img))
    data = tmp / "data"
    import_dataset(src, data)
    return bundle, data, sorted((data / "images").rglob("*.png"))


def test_api_qa_run_and_evaluate_agree_on_every_image(setup, tmp_path: Path) -> None:
    bundle, data, files = setup
    with TestClient(create_app(load_settings(auth_disabled=True, model=bundle, verdict_db=tmp_path / "v.sqlite"))) \
            as client:
        api = {f.name: client.post("/v1/inspect", content=f.read_bytes(),
                                   headers={"Content-Type": "image/png"}).json() for f in files}
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "defectscope", "inspect", str(data / "images"), "--model",
                           str(bundle), "--out", str(out), "--no-heatmaps", "--fail-on", "none"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    qa = {Path(r["path"]).name: r for r in map(json.loads, (out / "verdicts.jsonl").read_text().splitlines())}
    report = evaluate(bundle, data, split="all", out=tmp_path / "eval")
    with (tmp_path / "eval" / "predictions.csv").open() as fh:
        ev = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    assert set(api) == set(qa) == set(ev) == {f.name for f in files}
    invalid = [n for n, a in api.items() if a["verdict"] == "invalid"]
    assert invalid == ["part3.png"]  # the gate refused the same frame everywhere
    for name, a in api.items():
        q, e = qa[name], ev[name]
        assert a["verdict"] == q["verdict"] == e["verdict"], name
        assert a["label"] == q["label"], name
        gate = a["label"] if a["verdict"] == "invalid" else ""
        assert e["gate"] == gate and (q["error"] or None) == a["reason"], name
        for c, s in a["scores"].items():
            assert s == pytest.approx(q["scores"][c], abs=1e-6) == pytest.approx(float(e[c]), abs=1e-5), (name, c)
        assert a["defect_score"] == pytest.approx(q["defect_score"], abs=1e-6)
        assert set(a["timings_ms"]) >= set(q["timings_ms"]) >= {"decode", "preprocess", "quality", "inference"}
    th = report.metrics["pass_fail"]
    assert (th["fail_threshold"], th["review_threshold"]) == (0.55, 0.45) == (api["part0.png"]["thresholds"]["fail"],
                                                                            api["part0.png"]["thresholds"]["review"])
    assert th["invalid_rate"] == pytest.approx(1 / 8)
