"""Micro-batching under concurrency, load shedding with 503, and the verdict log after a burst."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from inspection.predictor import Predictor
from tests.serving.conftest import jpeg, metric

HEADERS = {"Content-Type": "image/jpeg"}


def test_concurrent_requests_are_micro_batched_and_each_gets_its_own_verdict(make_client, predictor: Predictor):
    images = [jpeg(seed) for seed in range(16)]
    expected = [it.verdict for it in predictor.run([predictor.load(d) for d in images])]
    # a wide wait window so requests that arrive together certainly share a batch
    with make_client(max_batch_size=8, batch_wait_ms=150.0) as client:
        def post(i: int):
            return client.post("/v1/inspect", content=images[i], headers={**HEADERS, "X-Part-Id": f"p{i}"})

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(post, range(16)))
        text = client.get("/metrics").text
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    for i, (body, exp) in enumerate(zip(bodies, expected, strict=True)):
        assert body["part_id"] == f"p{i}"
        assert body["image"]["sha256"] == __import__("hashlib").sha256(images[i]).hexdigest()
        assert body["label"] == exp.label and body["verdict"] == exp.outcome.value
        assert np.allclose([body["scores"][c] for c in exp.scores], list(exp.scores.values()), atol=1e-5)
    batches = metric(text, "defectscope_batch_size_count")
    assert metric(text, "defectscope_batch_size_sum") == 16
    assert batches < 16, "no two concurrent requests shared a batch"
    assert max(b["batch_size"] for b in bodies) > 1
    assert metric(text, "defectscope_stage_seconds_count", stage="inference") == 16


class SlowBackend:
    """The real backend, slowed down like an overloaded CPU, so the queue fills deterministically."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay, self.name = inner, delay, inner.name

    def __call__(self, batch):
        time.sleep(self.delay)
        return self.inner(batch)


def test_overload_sheds_with_503_and_retry_after(make_client, bundle_path) -> None:
    slow = Predictor.from_path(bundle_path, threads=1)
    slow.backend = SlowBackend(slow.backend, 0.3)
    with make_client(predictor_=slow, max_queue=2, max_batch_size=1, retry_after_s=3) as client:
        t0 = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(lambda i: client.post("/v1/inspect", content=jpeg(i), headers=HEADERS),
                                      range(10)))
        elapsed = time.monotonic() - t0
        text = client.get("/metrics").text
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503}, codes
    assert codes.count(200) >= 2
    shed = [r for r in responses if r.status_code == 503]
    assert all(r.headers["Retry-After"] == "3" and r.json()["error"]["code"] == "overloaded" for r in shed)
    assert elapsed < 10  # answered, not queued without limit
    assert metric(text, "defectscope_shed_total") == len(shed)


def test_verdict_log_has_one_row_per_verdict_after_a_burst(make_client, tmp_path) -> None:
    db = tmp_path / "burst.sqlite"
    keep = tmp_path / "kept"
    with make_client(verdict_db=db, keep_images_dir=keep, keep_images_for="fail,review,pass",
                     max_queue=64) as client:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(
                lambda i: client.post("/v1/inspect", content=jpeg(i % 5), headers={**HEADERS, "X-Station-Id":
                                                                                    f"s{i % 3}"}), range(40)))
        ok = [r.json() for r in responses if r.status_code == 200]
        assert len(ok) == 40
        client.app.state.service.verdict_log.flush()
        listed = client.get("/v1/verdicts", params={"station": "s1", "limit": 1000}).json()
    # after shutdown every row is there, each request id exactly once
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM verdicts")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert sorted(ids) == sorted(b["request_id"] for b in ok)
    assert mode == "wal"
    assert listed["count"] == sum(1 for i in range(40) if i % 3 == 1)
    assert all(v["station"] == "s1" for v in listed["verdicts"])
    assert len(list(keep.rglob("*.jpg"))) == 40  # every verdict kind kept here, named by request id
