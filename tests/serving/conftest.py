"""Shared fixtures: a small random-init bundle, test images, and an app factory."""

from __future__ import annotations

import subprocess
import sys
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


class LogDb:
    """Where a test's logs live, on one of the two databases, and how to take that database away."""

    def __init__(self, where: Path | str, admin_url: str | None = None, folder: Path | None = None) -> None:
        self.where, self.admin_url, self.folder = where, admin_url, folder
        self.kind = "postgresql" if admin_url else "sqlite"

    def settings(self) -> dict[str, Any]:
        """Service settings that put the logs here."""
        if self.admin_url is None:
            return {"verdict_db": self.where}
        return {"database_url": self.where, "verdict_spill_dir": self.folder}

    def ids(self) -> set[str]:
        from serving.sql import database

        try:
            return {r["request_id"] for r in database(self.where).select("SELECT request_id FROM verdicts")}
        except Exception:
            return set()

    @contextmanager
    def unavailable(self, seconds: float = 30.0) -> Iterator[None]:
        """SQLite: another process holds an exclusive lock. PostgreSQL: the database refuses connections
        and its sessions are cut (a failover, a restart)."""
        if self.admin_url is None:
            code = ("import sqlite3, sys, time\n"
                    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                    "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(float(sys.argv[2]))\n")
            proc = subprocess.Popen([sys.executable, "-c", code, str(self.where), str(seconds)],
                                    stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
            try:
                yield
            finally:
                proc.kill()
                proc.wait()
            return
        import psycopg

        name = str(self.where).rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            try:
                yield
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.fixture(params=["sqlite", "postgresql"])
def log_db(request: pytest.FixtureRequest, tmp_path: Path) -> LogDb:
    """The same test on the embedded SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return LogDb(tmp_path / "v.sqlite")
    return LogDb(request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_server"), tmp_path)
