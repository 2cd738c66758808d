"""The camera-station client: capture -> JPEG -> POST /v1/inspect -> act on the verdict.

A part's record is never lost: a request that fails (service down, 503, 5xx) is retried with
exponential backoff (honouring Retry-After); a part still unsent after that waits in a backlog
that is resent as soon as the service answers again, and whatever is left at the end is
written to a JSONL file (with its JPEG) for a later resend. 4xx answers are final: the
service looked at the image and refused it, so sending it again would not help.

A frame's process parameters (``frame.meta["process"]``: the simulated line's state, or a
sidecar table for an image folder, ``serving.process_sidecar``) go with it as ``X-Process``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from datasets.simulator.sources import open_source
from inspection.atomic import write_bytes_atomic, write_text_atomic
from inspection.camera import FrameSource
from inspection.errors import DefectscopeError
from inspection.types import Frame

RETRYABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class StationConfig:
    api: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    station_id: str = "station-1"
    rate: float | None = None  # parts per second; None = as fast as the service answers
    count: int | None = None
    duration: float | None = None  # seconds
    jpeg_quality: int = 90
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.25  # first retry delay, doubled each time, capped at max_backoff
    max_backoff: float = 5.0
    unsent_path: Path | None = Path("station-unsent.jsonl")


@dataclass
class PartResult:
    part_id: str
    verdict: str | None = None  # pass / fail / review; None when there is no verdict (yet)
    label: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None  # round trip as the station sees it
    server_ms: float | None = None
    truth: str | None = None
    request_id: str | None = None  # the service's id of the verdict
    error: str | None = None
    attempts: int = 0
    resent: bool = False  # answered later, from the backlog
    ts: float = field(default_factory=time.time)


@dataclass
class StationSummary:
    parts: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # pass / fail / review / error / unsent
    latencies_ms: list[float] = field(default_factory=list)
    truth_checked: int = 0
    truth_agree: int = 0
    unsent_file: Path | None = None
    elapsed_s: float = 0.0

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def add(self, r: PartResult) -> None:
        self.counts[r.verdict or ("error" if r.error and r.error.startswith("refused") else "unsent")] += 1
        if r.latency_ms is not None:
            self.latencies_ms.append(r.latency_ms)
        if r.truth is not None and r.verdict in ("pass", "fail"):
            self.truth_checked += 1
            self.truth_agree += (r.truth == "good") == (r.verdict == "pass")


@dataclass
class Pending:
    result: PartResult
    jpeg: bytes
    process: str | None = None  # the X-Process header: JSON text

    @classmethod
    def of(cls, frame: Frame, part_id: str, jpeg_quality: int) -> Pending:
        truth, process = frame.meta.get("label"), frame.meta.get("process")
        return cls(PartResult(part_id, truth=None if truth is None else str(truth)), encode_jpeg(frame, jpeg_quality),
                   None if process is None else json.dumps(process))


def encode_jpeg(frame: Frame, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DefectscopeError(f"frame {frame.frame_id} could not be encoded as JPEG")
    return buf.tobytes()


def open_frames(spec: str, *, rate: float | None, seed: int | None = None, **options: Any) -> FrameSource:
    """The capture stage's frame source for ``spec`` (sim, a device index, a URL, a folder), paced at ``rate``."""
    return open_source(spec, rate=rate, seed=0 if seed is None else seed, **options)


class StationClient:
    def __init__(self, cfg: StationConfig, client: httpx.Client | None = None) -> None:
        self.cfg = cfg
        headers = {"X-Station-Id": cfg.station_id}
        if cfg.api_key:
            headers["X-API-Key"] = cfg.api_key
        self.http = client or httpx.Client(base_url=cfg.api.rstrip("/"), headers=headers, timeout=cfg.timeout)
        self.backlog: deque[Pending] = deque()

    def close(self) -> None:
        self.http.close()

    def _post_once(self, p: Pending) -> tuple[bool, float | None]:
        """One attempt. Returns (final, retry_after): final means a verdict or a refusal was recorded."""
        r = p.result
        r.attempts += 1
        t0 = time.perf_counter()
        headers = {"Content-Type": "image/jpeg", "X-Part-Id": r.part_id}
        if p.process is not None:
            headers["X-Process"] = p.process
        try:
            resp = self.http.post("/v1/inspect", content=p.jpeg, headers=headers)
        except httpx.HTTPError as exc:
            r.error = f"service unreachable: {type(exc).__name__}"
            return False, None
        if resp.status_code == 200:
            body = resp.json()
            r.verdict, r.label, r.confidence = body["verdict"], body["label"], body["confidence"]
            r.request_id = body.get("request_id")
            r.latency_ms = (time.perf_counter() - t0) * 1000.0
            r.server_ms = body.get("timings_ms", {}).get("total")
            r.error = None
            return True, None
        message = _error_message(resp)
        if resp.status_code in RETRYABLE or resp.status_code >= 500:
            r.error = f"HTTP {resp.status_code}: {message}"
            ra = resp.headers.get("retry-after", "")
            return False, float(ra) if ra.replace(".", "", 1).isdigit() else None
        r.error = f"refused (HTTP {resp.status_code}): {message}"
        return True, None

    def try_once(self, p: Pending) -> bool:
        """One attempt, no retry (a PLC handshake cannot wait): True when the service answered or refused."""
        return self._post_once(p)[0]

    def send(self, p: Pending, stop: threading.Event | None = None) -> bool:
        """Post with retries; False when the part went to the backlog."""
        for attempt in range(self.cfg.retries + 1):
            final, retry_after = self._post_once(p)
            if final:
                return True
            if attempt == self.cfg.retries:
                break
            delay = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempt) * (0.5 + random.random())
            delay = max(delay, retry_after or 0.0)
            if stop is not None and stop.wait(delay):
                break
            if stop is None:
                time.sleep(delay)
        self.backlog.append(p)
        return False

    def resend_one(self) -> PartResult | None:
        """One attempt for the oldest backlog part; its result when it got an answer."""
        if not self.backlog:
            return None
        p = self.backlog[0]
        final, _ = self._post_once(p)
        if not final:
            return None
        self.backlog.popleft()
        p.result.resent = True
        return p.result

    def write_unsent(self, path: Path) -> None:
        """The backlog as JSONL (one record per part) with each JPEG beside it."""
        img_dir = path.with_suffix(".images")
        lines = []
        for p in self.backlog:
            img = img_dir / f"{p.result.part_id}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(img, p.jpeg)
            lines.append(json.dumps({**asdict(p.result), "station": self.cfg.station_id, "image": str(img),
                                     "process": None if p.process is None else json.loads(p.process)}))
        old = path.read_text() if path.is_file() else ""
        write_text_atomic(path, old + "".join(line + "\n" for line in lines))


def _error_message(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return resp.text[:200]


def _paced(frames: Iterable[Frame], cfg: StationConfig, stop: threading.Event) -> Iterator[tuple[int, Frame]]:
    start = time.monotonic()
    for i, frame in enumerate(frames):
        if stop.is_set() or (cfg.count is not None and i >= cfg.count):
            return
        if cfg.duration is not None and time.monotonic() - start >= cfg.duration:
            return
        if cfg.rate:
            due = start + i / cfg.rate
            if stop.wait(max(0.0, due - time.monotonic())):
                return
        yield i, frame


def run_station(frames: Iterable[Frame], cfg: StationConfig, *, on_result: Callable[[PartResult], Any] | None = None,
                stop: threading.Event | None = None, client: StationClient | None = None) -> StationSummary:
    """Feed ``frames`` to the service until count / duration / ``stop``; returns the summary."""
    stop = stop or threading.Event()
    station = client or StationClient(cfg)
    summary = StationSummary()
    t0 = time.monotonic()

    def done(r: PartResult) -> None:
        summary.add(r)
        if on_result is not None:
            on_result(r)

    try:
        for i, frame in _paced(frames, cfg, stop):
            summary.parts += 1
            part_id = str(frame.meta.get("part_id") or f"{cfg.station_id}-{i:06d}")
            pending = Pending.of(frame, part_id, cfg.jpeg_quality)
            if station.send(pending, stop):
                done(pending.result)
                resent = station.resend_one()  # the service answers again: catch up one old part
                if resent is not None:
                    done(resent)
            elif on_result is not None:
                on_result(replace(pending.result))  # a snapshot, shown as unsent; counted when answered or at the end
        while station.backlog and not stop.is_set():  # a last try for what is still waiting
            resent = station.resend_one()
            if resent is None:
                break
            done(resent)
    finally:
        for p in station.backlog:
            summary.add(p.result)
        if station.backlog and cfg.unsent_path is not None:
            station.write_unsent(cfg.unsent_path)
            summary.unsent_file = cfg.unsent_path
        summary.elapsed_s = time.monotonic() - t0
        if client is None:
            station.close()
    return summary
