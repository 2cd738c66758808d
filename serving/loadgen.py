"""Concurrent stations posting images to a running service, recording every answer (load tests, demos)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Answer:
    sent: float  # time.perf_counter() when the request left
    latency_ms: float
    status: int  # 0: no HTTP answer at all (connection error, timeout)
    version: str | None
    classes: int  # scores in the verdict (tells the models apart)
    request_id: str | None = None  # of the verdict: to find it in the verdict log


@dataclass
class StationLoad:
    """``with StationLoad(url, key, images):`` keeps ``stations`` threads posting until the block ends."""

    url: str
    key: str | None
    images: Sequence[bytes]
    stations: int = 16
    timeout_s: float = 30.0
    # which image station i sends as its part n (default: the pool in turn, stations offset)
    pick: Callable[[int, int], int] | None = None
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _station(self, i: int) -> None:
        headers = {"Content-Type": "image/jpeg", "X-Station-Id": f"station-{i:02d}"}
        if self.key:
            headers["X-API-Key"] = self.key
        n = 0
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                k = self.pick(i, n) if self.pick is not None else i + n * self.stations
                t0 = time.perf_counter()
                try:
                    r = client.post("/v1/inspect", content=self.images[k % len(self.images)], headers=headers)
                    body = r.json() if r.status_code == 200 else {}
                    a = Answer(t0, (time.perf_counter() - t0) * 1000, r.status_code,
                               body.get("model", {}).get("version"), len(body.get("scores", {})),
                               body.get("request_id"))
                except httpx.HTTPError:
                    a = Answer(t0, (time.perf_counter() - t0) * 1000, 0, None, 0)
                n += 1
                with self._lock:
                    self.answers.append(a)

    def __enter__(self) -> StationLoad:
        self._threads = [threading.Thread(target=self._station, args=(i,), daemon=True) for i in range(self.stations)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    @property
    def answered(self) -> list[str]:
        """Request ids of every verdict answered (200)."""
        return [a.request_id for a in self.answers if a.status == 200 and a.request_id]
