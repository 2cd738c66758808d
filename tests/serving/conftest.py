"""Shared fixtures: a small random-init bundle, test images, and an app factory."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from inspection.card import ModelCard, Thresholds
from inspection.models import create_model
from inspection.predictor import Predictor
from inspection.preprocess import PreprocessConfig
from serving.app import create_app
from serving.config import load_settings
from training.export import save_bundle

STATION_KEY = "station-key-0123456789abcdef"
ENGINEER_KEY = "engineer-key-0123456789abcdef"


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("mobilenet_v3_small", num_classes=3).eval()
    card = ModelCard(name="test-model", version="", arch="mobilenet_v3_small", classes=("good", "scratch", "dent"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(64, 80)),
                     thresholds=Thresholds(fail=0.6, review=0.4))
    path = tmp_path_factory.mktemp("bundle") / "model"
    save_bundle(path, model, card)
    return path


@pytest.fixture(scope="session")
def predictor(bundle_path: Path) -> Predictor:
    return Predictor.from_path(bundle_path, threads=1)


def jpeg(seed: int, size: tuple[int, int] = (97, 131)) -> bytes:
    """An odd-sized textured image; different seeds give different scores."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 1 + seed % 5)
    cv2.circle(img, (w // 3 + seed % 20, h // 2), 5 + seed % 15, (int(seed * 37 % 255), 40, 200), -1)
    _, buf = cv2.imencode(".jpg", img)
    return buf.tobytes()



@pytest.fixture()
def make_client(tmp_path: Path, predictor: Predictor) -> Callable[..., Any]:
    """``with make_client(**settings) as client:`` a TestClient on a fresh app (lifespan run)."""

    @contextmanager
    def factory(predictor_: Predictor | None = predictor, **overrides: Any) -> Iterator[TestClient]:
        base: dict[str, Any] = {"auth_disabled": True, "verdict_db": tmp_path / "verdicts.sqlite",
                                "batch_wait_ms": 1.0}
        settings = load_settings(**{**base, **overrides})
        with TestClient(create_app(settings, predictor_), raise_server_exceptions=False) as client:
            yield client

    return factory


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus text output (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == name or key == f"{name}{{{want}}}":
            return float(value)
    return 0.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a real disk that fills up. Needs root (CI runs as root); skipped elsewhere."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root): the full-disk tests run in CI")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
