"""The inspection service end to end: real uvicorn, real HTTP client, a 1280x1024 JPEG per request.

    .venv/bin/python benchmarks/service_latency.py [--model BUNDLE] [--arch resnet18] [--seconds 10]
    .venv/bin/python benchmarks/service_latency.py --load 60      # 16 stations for 60 s: no 5xx, no lost rows

Measures p50/p99 latency at 1 station and throughput at 1, 4 and 16 concurrent stations (each a
thread posting one image after another), next to (a) the in-process predictor on the same image
and (b) the naive tutorial service (benchmarks/service_naive_baseline.py: PIL, eager PyTorch,
one request at a time), and prints the ratios. Without --model a random-init bundle of a
realistic architecture is built (speed does not depend on the weights). Client and server share
the machine's cores, as a station and the service would not: figures are conservative.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np

from datasets.simulator.camera import SimulatedCamera
from inspection.predictor import Predictor
from serving.server import free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from defectscope.cli import main; main()"]


def build_bundle(arch: str, size: int, folder: Path) -> Path:
    from inspection.card import ModelCard
    from inspection.models import create_model
    from inspection.preprocess import PreprocessConfig
    from training.export import save_bundle

    card = ModelCard(name=f"bench-{arch}", version="", arch=arch, classes=("good", "scratch", "dent"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(size, size)))
    save_bundle(folder / arch, create_model(arch, num_classes=3).eval(), card)
    return folder / arch


def test_image() -> bytes:
    """A simulated part, 1280x1024 colour, JPEG quality 90: what a station sends."""
    with SimulatedCamera(seed=3, color="bgr", size=(1024, 1280)) as cam:
        frame = next(iter(cam))
    ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert frame.image.shape[:2] == (1024, 1280) and ok
    return buf.tobytes()


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def in_process_ms(model: Path, data: bytes, repeats: int) -> float:
    predictor = Predictor.from_path(model)
    _median_ms(lambda: predictor.inspect(data), 5)
    return _median_ms(lambda: predictor.inspect(data), repeats)


def interleaved_ratio(url: str, kwargs: dict, model: Path, data: bytes, rounds: int = 12,
                      n: int = 30) -> tuple[float, float, float]:
    """(service p50, in-process p50, median of the per-round ratios) at one station, measured in
    alternating rounds so that a busy moment on a shared machine hits both sides alike."""
    predictor = Predictor.from_path(model)
    with httpx.Client(timeout=30) as client:
        def post() -> None:
            client.post(url, **kwargs)

        _median_ms(post, 10)
        _median_ms(lambda: predictor.inspect(data), 10)
        svc, inp = [], []
        for _ in range(rounds):
            svc.append(_median_ms(post, n))
            inp.append(_median_ms(lambda: predictor.inspect(data), n))
    ratios = [a / b for a, b in zip(svc, inp, strict=True)]
    return statistics.median(svc), statistics.median(inp), statistics.median(ratios)


def start(cmd: list[str], url: str, ready_path: str, env: dict[str, str] | None = None,
          cwd: Path = ROOT) -> subprocess.Popen:
    # the server's log goes to a file: a pipe nobody reads would fill and block its logging
    fd, log_name = tempfile.mkstemp(prefix="defectscope-bench-server-", suffix=".log")
    with os.fdopen(fd, "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    print(f"server log: {log_name}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {Path(log_name).read_text()[-3000:]}")
        try:
            if httpx.get(url + ready_path, timeout=1).status_code in (200, 405):
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{cmd} did not become ready")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Load:
    """``stations`` threads, each posting the image one request after another."""

    def __init__(self, url: str, post_kwargs: dict, stations: int) -> None:
        self.url, self.kwargs, self.stations = url, post_kwargs, stations
        self.latencies: list[float] = []
        self.codes: Counter[int] = Counter()
        self._lock = threading.Lock()

    def _station(self, i: int, deadline: float, count: int | None) -> None:
        with httpx.Client(timeout=30, headers={"X-Station-Id": f"bench-{i}"}) as client:
            n = 0
            while time.monotonic() < deadline and (count is None or n < count):
                t0 = time.perf_counter()
                try:
                    code = client.post(self.url, **self.kwargs).status_code
                except httpx.HTTPError:
                    code = 0
                ms = (time.perf_counter() - t0) * 1000
                with self._lock:
                    self.codes[code] += 1
                    if code == 200:
                        self.latencies.append(ms)
                n += 1

    def run(self, seconds: float, count: int | None = None) -> float:
        t0 = time.monotonic()
        threads = [threading.Thread(target=self._station, args=(i, t0 + seconds, count)) for i in range(self.stations)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - t0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def measure(url: str, kwargs: dict, levels: list[int], seconds: float, warm: int = 10) -> dict[int, dict]:
    Load(url, kwargs, 1).run(60, count=warm)
    out = {}
    for n in levels:
        load = Load(url, kwargs, n)
        elapsed = load.run(seconds)
        out[n] = {"rps": load.codes[200] / elapsed, "p50": load.pct(50), "p99": load.pct(99), "codes": load.codes}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="bundle folder (default: random-init --arch)")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=224, help="model input (square) when building a bundle")
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--batch-wait-ms", type=float, default=2.0)
    ap.add_argument("--threads", type=int, help="the service's inference threads (default: all cores)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--naive-torch-threads", type=int, default=1,
                    help="torch threads of the baseline: 1 by default, because OpenMP with all cores collapses "
                    "when other processes share them (see BENCHMARKS.md); 0 keeps torch's default")
    ap.add_argument("--load", type=float, metavar="SECONDS", help="only the 16-station load run, this long")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="defectscope-bench-"))
    model = args.model or build_bundle(args.arch, args.size, tmp)
    data = test_image()
    print(f"model {model}  image 1280x1024 JPEG {len(data) / 1024:.0f} KiB  cores {os.cpu_count()}")

    port, db = free_port(), tmp / "verdicts.sqlite"
    ours_url = f"http://127.0.0.1:{port}"
    proc = start([*CLI, "serve", "--model", str(model), "--port", str(port), "--no-auth", "--verdict-db", str(db),
                  "--max-batch-size", str(args.max_batch_size), "--batch-wait-ms", str(args.batch_wait_ms),
                  "--max-queue", "64", *(["--threads", str(args.threads)] if args.threads else [])],
                 ours_url, "/readyz")
    ours_kwargs = {"content": data, "headers": {"Content-Type": "image/jpeg"}}
    if args.load:
        load = Load(ours_url + "/v1/inspect", ours_kwargs, 16)
        elapsed = load.run(args.load)
        metrics = httpx.get(ours_url + "/metrics").text
        stop(proc)
        rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        fives = sum(c for code, c in load.codes.items() if code >= 500 or code == 0)
        print(f"load: 16 stations x {elapsed:.0f} s: {sum(load.codes.values())} requests, status {dict(load.codes)}, "
              f"{load.codes[200] / elapsed:.1f}/s, p50 {load.pct(50):.0f} ms, p99 {load.pct(99):.0f} ms")
        print(f"5xx or failed: {fives}   verdict-log rows {rows} vs 200 answers {load.codes[200]}: "
              f"{'none lost' if rows == load.codes[200] else 'MISMATCH'}")
        print("\n".join(line for line in metrics.splitlines()
                        if line.startswith(("defectscope_batch_size_sum", "defectscope_batch_size_count",
                                            "defectscope_stage_seconds_sum", "defectscope_stage_seconds_count"))))
        return
    try:
        ours = measure(ours_url + "/v1/inspect", ours_kwargs, levels, args.seconds)
        svc1, inp1, ratio1 = interleaved_ratio(ours_url + "/v1/inspect", ours_kwargs, model, data)
    finally:
        stop(proc)
    naive = None
    if not args.skip_naive:
        nport = free_port()
        nurl = f"http://127.0.0.1:{nport}"
        nproc = start([sys.executable, str(ROOT / "benchmarks/service_naive_baseline.py"), "--model", str(model),
                       "--port", str(nport), "--torch-threads", str(args.naive_torch_threads)], nurl, "/predict")
        try:
            naive = measure(nurl + "/predict", {"files": {"file": ("part.jpg", data, "image/jpeg")}}, levels,
                            args.seconds)
        finally:
            stop(nproc)
    inproc = in_process_ms(model, data, 50)  # after the servers: it would compete with them for the cores

    print(f"\nin-process predictor (decode+gate+preprocess+infer+decide, batch 1): {inproc:.1f} ms median")
    print(f"{'stations':>8} | {'ours req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'naive req/s':>11} {'p50 ms':>7} "
          f"{'p99 ms':>7} | {'throughput x':>12}")
    for n in levels:
        o = ours[n]
        b = naive[n] if naive else {"rps": float("nan"), "p50": float("nan"), "p99": float("nan")}
        print(f"{n:>8} | {o['rps']:>10.1f} {o['p50']:>7.1f} {o['p99']:>7.1f} | {b['rps']:>11.1f} {b['p50']:>7.1f} "
              f"{b['p99']:>7.1f} | {o['rps'] / b['rps']:>12.2f}")
    bad = {n: {k: v for k, v in o["codes"].items() if k != 200} for n, o in ours.items()}
    print(f"non-200 answers (ours): {bad}")
    print(f"service p50 at 1 station / in-process: {ours[levels[0]]['p50'] / inproc:.2f}x; in alternating rounds "
          f"(12 x 30 requests each side): service {svc1:.1f} ms / in-process {inp1:.1f} ms, median ratio "
          f"{ratio1:.2f}x")
    if naive:
        print(f"throughput at {levels[-1]} stations, ours / naive: "
              f"{ours[levels[-1]]['rps'] / naive[levels[-1]]['rps']:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
