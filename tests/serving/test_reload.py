"""Hot reload: POST /v1/model/reload vets a model before the swap, the old one serves on any problem,
and a swap under concurrent load fails no request; every verdict names the model that made it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from inspection.card import ModelCard, Thresholds
from inspection.models import create_model
from inspection.preprocess import PreprocessConfig
from registry import ModelRegistry
from serving.batcher import MicroBatcher
from serving.config import load_settings
from serving.server import start_in_background
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg
from tests.support import make_tiny_bundle
from training.export import save_bundle

KEYS = {"auth_disabled": False, "station_keys": STATION_KEY, "engineer_keys": ENGINEER_KEY}
ENG = {"X-API-Key": ENGINEER_KEY}
STA = {"X-API-Key": STATION_KEY, "Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Champion A (3 classes, 40x56) and candidate B (4 classes incl. a new one, other input size)."""
    root = tmp_path_factory.mktemp("reg")
    a = make_tiny_bundle(root / "src-a")
    torch.manual_seed(1)
    card = ModelCard(name="tiny", version="", arch="mobilenet_v3_small",
                     classes=("good", "scratch", "dent", "missing_hole"), pass_classes=("good",),
                     preprocess=PreprocessConfig(input_size=(48, 64)), thresholds=Thresholds(fail=0.5),
                     parent_version=a.card.version)
    b = save_bundle(root / "src-b", create_model("mobilenet_v3_small", num_classes=4), card)
    reg = ModelRegistry(root / "registry")
    reg.add(a.path, status="promoted")
    reg.add(b.path)
    return reg.root, a.card.version, b.card.version


def test_reload_swaps_to_the_new_champion_and_back(make_client, registry, tmp_path: Path) -> None:
    import shutil

    reg_root = tmp_path / "registry"
    shutil.copytree(registry[0], reg_root)
    _, a, b = registry
    reg = ModelRegistry(reg_root)
    with make_client(None, registry=reg_root, **KEYS) as client:
        first = client.post("/v1/inspect", content=jpeg(1), headers=STA).json()
        assert first["model"]["version"] == a and len(first["scores"]) == 3
        assert client.post("/v1/model/reload", headers=ENG).json()["changed"] is False  # already the champion
        reg.promote(b, reason="test")
        r = client.post("/v1/model/reload", headers=ENG)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["changed"] and out["previous"]["version"] == a and out["model"]["version"] == b
        assert "classes added: missing_hole" in out["notes"]
        after = client.post("/v1/inspect", content=jpeg(1), headers=STA).json()
        assert after["model"]["version"] == b and set(after["scores"]) == {"good", "scratch", "dent", "missing_hole"}
        assert client.get("/readyz", headers=STA).json()["model"]["version"] == b
        reg.rollback()
        assert client.post("/v1/model/reload", headers=ENG).json()["model"]["version"] == a
        pinned = client.post("/v1/model/reload", headers=ENG, json={"version": b}).json()
        assert pinned["model"]["version"] == b
        assert client.post("/v1/model/reload", headers={"X-API-Key": STATION_KEY}).status_code == 403
        r = client.post("/v1/model/reload", headers=ENG, json={"version": "0000deadbeef"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_version"
        r = client.post("/v1/model/reload", headers=ENG, json={"version": "../../etc"})
        assert r.status_code in (404, 409, 422)


def test_corrupt_or_incompatible_bundle_is_refused_and_old_model_serves(make_client, registry,
                                                                        tmp_path: Path) -> None:
    import shutil

    reg_root = tmp_path / "registry"
    shutil.copytree(registry[0], reg_root)
    _, a, b = registry
    with make_client(None, registry=reg_root, **KEYS) as client:
        weights = reg_root / "versions" / b / "weights.safetensors"
        data = bytearray(weights.read_bytes())
        data[-5:] = b"XXXXX"  # bit rot after registration
        weights.write_bytes(bytes(data))
        r = client.post("/v1/model/reload", headers=ENG, json={"version": b})
        assert r.status_code == 409 and r.json()["error"]["code"] == "bundle_invalid"
        assert "keeps serving" in r.json()["error"]["message"]
        ok = client.post("/v1/inspect", content=jpeg(2), headers=STA)
        assert ok.status_code == 200 and ok.json()["model"]["version"] == a

        # a bundle whose pass class differs changes what 'pass' means: refused unless forced
        c_src = tmp_path / "c"
        torch.manual_seed(2)
        card = ModelCard(name="tiny", version="", arch="mobilenet_v3_small", classes=("ok", "scratch"),
                         pass_classes=("ok",), preprocess=PreprocessConfig(input_size=(40, 56)))
        save_bundle(c_src, create_model("mobilenet_v3_small", num_classes=2), card, export=False)
        c = ModelRegistry(reg_root).add(c_src)
        r = client.post("/v1/model/reload", headers=ENG, json={"version": c})
        assert r.status_code == 409 and r.json()["error"]["code"] == "incompatible_model"
        assert client.post("/v1/inspect", content=jpeg(3), headers=STA).json()["model"]["version"] == a
        forced = client.post("/v1/model/reload", headers=ENG, json={"version": c, "force": True})
        assert forced.status_code == 200 and forced.json()["model"]["version"] == c


def test_a_version_the_registry_rejected_is_not_served_and_every_reload_is_recorded(make_client, registry,
                                                                                     tmp_path: Path) -> None:
    import shutil

    reg_root = tmp_path / "registry"
    shutil.copytree(registry[0], reg_root)
    _, a, b = registry
    reg = ModelRegistry(reg_root)
    reg.reject(b, reason="escapes on the golden set")
    with make_client(None, registry=reg_root, **KEYS) as client:
        r = client.post("/v1/model/reload", headers=ENG, json={"version": b})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "version_rejected")
        assert client.post("/v1/inspect", content=jpeg(1), headers=STA).json()["model"]["version"] == a
        forced = client.post("/v1/model/reload", headers=ENG, json={"version": b, "force": True})
        assert forced.status_code == 200 and forced.json()["model"]["version"] == b
    events = [e for e in reg.lines()["default"]["events"] if e["action"] == "serve"]
    assert [e["version"] for e in events] == [b] and "forced" in events[0]["reason"]


def test_reload_without_registry(make_client, bundle_path: Path) -> None:
    with make_client(None, model=bundle_path, **KEYS) as client:
        r = client.post("/v1/model/reload", headers=ENG, json={"version": "abc"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_registry"
        r = client.post("/v1/model/reload", headers=ENG, json={"force": True})  # the same bundle, reloaded
        assert r.status_code == 200 and r.json()["changed"] is True


def test_batches_never_mix_models() -> None:
    calls: list[tuple[str, int]] = []

    def model(name: str, classes: int):
        def infer(x: np.ndarray) -> np.ndarray:
            calls.append((name, len(x)))
            time.sleep(0.01)
            return np.full((len(x), classes), 1.0 / classes, np.float32)
        return infer

    old, new = model("old", 3), model("new", 4)

    async def run() -> list[int]:
        b = MicroBatcher(old, max_batch_size=8, max_wait_ms=20, max_queue=64)
        b.start()
        try:
            futs = [b.submit(np.zeros((3, 8, 8), np.float32), old if i < 5 or i % 2 else new) for i in range(12)]
            res = await asyncio.gather(*futs)
        finally:
            b.stop()
        return [r.probs.shape[0] for r in res]

    shapes = asyncio.run(run())
    assert shapes == [3 if i < 5 or i % 2 else 4 for i in range(12)]  # each answered by the model it named
    assert sum(n for _, n in calls) == 12


def test_zero_failed_requests_while_reloading_under_load(registry, tmp_path: Path) -> None:
    import shutil

    reg_root = tmp_path / "registry"
    shutil.copytree(registry[0], reg_root)
    _, a, b = registry
    settings = load_settings(registry=reg_root, port=0, verdict_db=tmp_path / "v.sqlite", threads=1,
                             batch_wait_ms=2.0, max_queue=64, **KEYS)
    stop = threading.Event()
    results: list[tuple[int, str | None, int]] = []  # status, version, number of scores
    lock = threading.Lock()
    images = [jpeg(i) for i in range(8)]

    def station(i: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            n = 0
            while not stop.is_set():
                r = c.post("/v1/inspect", content=images[(i + n) % 8], headers={**STA, "X-Station-Id": f"s{i}"})
                n += 1
                body = r.json() if r.status_code == 200 else {}
                with lock:
                    results.append((r.status_code, body.get("model", {}).get("version"), len(body.get("scores", {}))))

    with start_in_background(settings) as srv:
        threads = [threading.Thread(target=station, args=(i, srv.url)) for i in range(16)]
        for t in threads:
            t.start()
        try:
            with httpx.Client(base_url=srv.url, timeout=60) as eng:
                for version in (b, a, b, a):
                    time.sleep(0.4)
                    r = eng.post("/v1/model/reload", headers=ENG, json={"version": version})
                    assert r.status_code == 200 and r.json()["model"]["version"] == version
                time.sleep(0.4)
        finally:
            stop.set()
            for t in threads:
                t.join()
    statuses = [s for s, _, _ in results]
    assert len(results) > 50 and statuses.count(200) == len(results), {s: statuses.count(s) for s in set(statuses)}
    versions = {v for _, v, _ in results}
    assert versions == {a, b}
    # the version a verdict names is the model that made it: A has 3 classes, B has 4
    assert all(n == (3 if v == a else 4) for _, v, n in results)


def test_registry_watch_picks_up_a_new_champion(make_client, registry, tmp_path: Path) -> None:
    import shutil

    reg_root = tmp_path / "registry"
    shutil.copytree(registry[0], reg_root)
    _, a, b = registry
    with make_client(None, registry=reg_root, registry_watch_s=0.1, **KEYS) as client:
        assert client.get("/readyz", headers=STA).json()["model"]["version"] == a
        ModelRegistry(reg_root).promote(b, reason="watch test")
        for _ in range(100):
            if client.get("/readyz", headers=STA).json()["model"]["version"] == b:
                break
            time.sleep(0.1)
        assert client.get("/readyz", headers=STA).json()["model"]["version"] == b
