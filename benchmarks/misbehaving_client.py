"""What one misbehaving client costs honest stations: their latency with and without it, side by side.

    .venv/bin/python benchmarks/misbehaving_client.py [--seconds 20] [--stations 4] [--rate 4]

A real ``defectscope serve`` (random-init default model, defectnet at 160 px) and honest stations
posting a simulated 1280x1024 JPEG at a line's pace (``--rate`` parts/s each, own key). Then,
one scenario at a time, a second client with a valid station key of its own misbehaves:

* slow:     64 uploads that trickle in a byte every half second, reopened as soon as refused;
* zips:     review uploads of eight bzip2 zip bombs and a 40,000-entry zip, back to back, 2 threads;
* heatmaps: explain=true on a 4000x3000 frame, back to back, 4 threads.

Prints the honest stations' p50/p99 per scenario and the p99 ratio to the quiet run
(target <= 2x), and what the misbehaving client got back. The misbehaving client runs in a
process of its own at the lowest CPU priority: on a plant network it sends from its own
machine, and here the honest stations already share the two cores with the service.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import socket
import statistics
import tempfile
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from service_latency import CLI, build_bundle, start, stop, test_image

from serving.server import free_port

HONEST_KEY = "honest-station-key-0123456789"
BAD_KEY = "misbehaving-station-key-0123456789"
ENGINEER_KEY = "bench-engineer-key-0123456789"


def honest(url: str, data: bytes, stations: int, rate: float, seconds: float) -> tuple[list[float], Counter]:
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def station(i: int) -> None:
        headers = {"X-API-Key": HONEST_KEY, "Content-Type": "image/jpeg", "X-Station-Id": f"honest-{i}"}
        with httpx.Client(timeout=30) as client:
            t_next, end = time.monotonic() + i / (rate * stations), time.monotonic() + seconds
            while t_next < end:
                time.sleep(max(0.0, t_next - time.monotonic()))
                t0 = time.perf_counter()
                try:
                    code = client.post(f"{url}/v1/inspect", content=data, headers=headers).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    codes[code] += 1
                    if code == 200:
                        latencies.append((time.perf_counter() - t0) * 1000)
                t_next += 1 / rate

    threads = [threading.Thread(target=station, args=(i,)) for i in range(stations)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, codes


class Attack:
    def __init__(self, url: str, port: int) -> None:
        self.url, self.port = url, port
        self.stop = threading.Event()
        self.codes: Counter[str] = Counter()
        self.threads: list[threading.Thread] = []

    def run(self, target, n: int) -> None:
        self.threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def slow(self) -> None:
        head = (f"POST /v1/inspect HTTP/1.1\r\nHost: x\r\nX-API-Key: {BAD_KEY}\r\nContent-Type: image/jpeg\r\n"
                "Content-Length: 1000000\r\n\r\n").encode()
        socks: list[socket.socket] = []
        while not self.stop.is_set():
            while len(socks) < 64:
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    s.sendall(head)
                    s.setblocking(False)
                    socks.append(s)
                except OSError:
                    self.codes["connect failed"] += 1
                    break
            for s in list(socks):
                try:
                    s.send(b"\0")
                    reply = s.recv(64)
                    self.codes[reply[9:12].decode() or "closed"] += 1
                    s.close()
                    socks.remove(s)
                except BlockingIOError:
                    pass
                except OSError:
                    self.codes["closed"] += 1
                    s.close()
                    socks.remove(s)
            time.sleep(0.5)
        for s in socks:
            s.close()

    def zips(self) -> None:
        bomb = _zip({"a.png": b"\0" * (50 << 20)}, zipfile.ZIP_BZIP2)
        many = _zip({f"n{i}.txt": b"" for i in range(40_000)}, zipfile.ZIP_STORED)
        files = [("files", (f"z{i}.zip", bomb, "application/zip")) for i in range(8)]
        files.append(("files", ("many.zip", many, "application/zip")))
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(f"{self.url}/v1/review/upload", files=files, headers={"X-API-Key": BAD_KEY})
                    self.codes[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.codes[type(exc).__name__] += 1

    def heatmaps(self) -> None:
        import cv2

        frame = cv2.resize(cv2.imdecode(np.frombuffer(test_image(), np.uint8), cv2.IMREAD_COLOR), (4000, 3000))
        data = cv2.imencode(".png", frame)[1].tobytes()
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(f"{self.url}/v1/inspect?explain=true", content=data,
                                    headers={"X-API-Key": BAD_KEY, "Content-Type": "image/png"})
                    self.codes[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    self.codes[type(exc).__name__] += 1


def _zip(members: dict[str, bytes], method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _attack_process(scenario: str, url: str, port: int, seconds: float, out: Any) -> None:
    os.nice(19)
    attack = Attack(url, port)
    attack.run(getattr(attack, scenario), {"slow": 1, "zips": 2, "heatmaps": 4}[scenario])
    time.sleep(seconds)
    attack.end()
    out.put(dict(attack.codes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="per scenario")
    ap.add_argument("--stations", type=int, default=4)
    ap.add_argument("--rate", type=float, default=4.0, help="parts per second per honest station")
    ap.add_argument("--scenarios", default="quiet,slow,zips,heatmaps")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="defectscope-misbehave-"))
    model = build_bundle("defectnet", 160, tmp)
    data = test_image()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DEFECTSCOPE_STATION_KEYS": f"{HONEST_KEY},{BAD_KEY}",
           "DEFECTSCOPE_ENGINEER_KEYS": ENGINEER_KEY}
    proc = start([*CLI, "serve", "--model", str(model), "--port", str(port), "--verdict-db", str(tmp / "v.sqlite")],
                 url, "/healthz", env=env)
    print(f"honest: {args.stations} stations x {args.rate:g} parts/s, 1280x1024 JPEG; {args.seconds:g} s a scenario; "
          f"load average {os.getloadavg()[0]:.1f}")
    honest(url, data, 1, 10, 2)  # warm-up
    rows = []
    ctx = multiprocessing.get_context("spawn")
    try:
        for name in args.scenarios.split(","):
            bad: dict[str, int] = {}
            if name != "quiet":
                results = ctx.Queue()
                proc_bad = ctx.Process(target=_attack_process, args=(name, url, port, args.seconds + 3, results))
                proc_bad.start()
                time.sleep(2.0)
            lat, codes = honest(url, data, args.stations, args.rate, args.seconds)
            if name != "quiet":
                bad = results.get(timeout=120)
                proc_bad.join(30)
            rows.append((name, lat, codes, Counter(bad)))
            print(f"  {name}: {len(lat)} verdicts, p99 {np.percentile(lat, 99):.1f} ms", flush=True)
    finally:
        stop(proc)
    quiet = next((r for r in rows if r[0] == "quiet"), rows[0])
    q99 = float(np.percentile(quiet[1], 99))
    print(f"\n{'scenario':>9} | {'honest p50 ms':>13} {'p99 ms':>7} {'p99 / quiet':>11} {'non-200':>7} | "
          "misbehaving client got")
    for name, lat, codes, bad in rows:
        p99 = float(np.percentile(lat, 99))
        non200 = sum(v for k, v in codes.items() if k != 200)
        print(f"{name:>9} | {statistics.median(lat):>13.1f} {p99:>7.1f} {p99 / q99:>10.2f}x {non200:>7} | "
              f"{dict(bad.most_common(4))}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
