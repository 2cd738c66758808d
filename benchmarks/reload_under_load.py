"""Hot reload under load: 16 stations post images while the model is swapped every few seconds.

    .venv/bin/python benchmarks/reload_under_load.py [--seconds 20] [--every 3] [--stations 16]

A real service (``defectscope serve --registry``, its own process) serves the champion of a
registry holding two versions of a realistic bundle (mobilenet_v3_small, 3 and 4 classes, other
input sizes, random weights: speed does not depend on them). Phase 1 runs the stations without
reloads, phase 2 the same stations while POST /v1/model/reload switches versions every
``--every`` seconds, in the same run. Prints requests, failures (must be 0), p50/p99 latency of
both phases side by side, the reload duration, and whether every verdict named the model that
made it (the two versions have a different number of classes).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from service_latency import start, stop  # noqa: E402

from datasets.simulator.camera import SimulatedCamera  # noqa: E402
from inspection.card import ModelCard  # noqa: E402
from inspection.models import create_model  # noqa: E402
from inspection.preprocess import PreprocessConfig  # noqa: E402
from registry import ModelRegistry  # noqa: E402
from serving.loadgen import StationLoad  # noqa: E402
from serving.server import free_port  # noqa: E402
from training.export import save_bundle  # noqa: E402


def bundles(folder: Path) -> tuple[str, str, Path]:
    reg = ModelRegistry(folder / "registry")
    versions = []
    for classes, size in ((("good", "scratch", "dent"), (128, 160)), (("good", "scratch", "dent", "chip"), (144, 176))):
        card = ModelCard(name="bench-reload", version="", arch="mobilenet_v3_small", classes=classes,
                         pass_classes=("good",), preprocess=PreprocessConfig(input_size=size))
        model = create_model("mobilenet_v3_small", num_classes=len(classes)).eval()
        b = save_bundle(folder / f"m{len(classes)}", model, card)
        versions.append(reg.add(b.path, status="promoted" if not versions else "candidate"))
    return versions[0], versions[1], reg.root


def images(n: int = 8) -> list[bytes]:
    out = []
    with SimulatedCamera(seed=5, color="bgr", size=(1024, 1280)) as cam:
        for frame, _ in zip(cam, range(n), strict=False):
            out.append(cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1)))] if v else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="Length of each phase.")
    p.add_argument("--every", type=float, default=3.0, help="Seconds between reloads in phase 2.")
    p.add_argument("--stations", type=int, default=16)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reload-bench-"))
    v1, v2, registry = bundles(tmp)
    station_key, engineer_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DEFECTSCOPE_STATION_KEYS": station_key, "DEFECTSCOPE_ENGINEER_KEYS": engineer_key}
    cmd = [sys.executable, "-c", "from defectscope.cli import main; main()", "serve", "--registry", str(registry),
           "--port", str(port), "--verdict-db", str(tmp / "verdicts.sqlite"), "--max-queue", "64"]
    proc = start(cmd, url, "/readyz", env)
    imgs = images()
    try:
        phases = {}
        reloads: list[float] = []
        for phase in ("steady", "reloading"):
            with StationLoad(url, station_key, imgs, stations=a.stations) as load, \
                    httpx.Client(base_url=url, headers={"X-API-Key": engineer_key}, timeout=120) as eng:
                t_end = time.perf_counter() + a.seconds
                target = 1
                while time.perf_counter() < t_end:
                    time.sleep(min(a.every, max(0.0, t_end - time.perf_counter())))
                    if phase == "reloading" and time.perf_counter() < t_end:
                        r = eng.post("/v1/model/reload", json={"version": v2 if target % 2 else v1})
                        r.raise_for_status()
                        reloads.append(r.json()["total_ms"])
                        target += 1
            phases[phase] = load.answers
    finally:
        stop(proc)
    print(f"{a.stations} stations, {a.seconds:.0f} s per phase, 1280x1024 JPEG, mobilenet_v3_small "
          f"({os.cpu_count()} cores; client and server share them)\n")
    print(f"{'phase':<11} {'requests':>8} {'failed':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for phase, answers in phases.items():
        lat = [x.latency_ms for x in answers if x.status == 200]
        failed = sum(x.status != 200 for x in answers)
        print(f"{phase:<11} {len(answers):>8} {failed:>6} {len(answers) / a.seconds:>7.1f} "
              f"{statistics.median(lat):>7.1f} {pct(lat, 0.99):>7.1f} {max(lat):>7.1f}")
    steady, rel = phases["steady"], phases["reloading"]
    p99_ratio = pct([x.latency_ms for x in rel], 0.99) / pct([x.latency_ms for x in steady], 0.99)
    wrong = sum(1 for x in rel if x.status == 200 and x.classes != (3 if x.version == v1 else 4))
    print(f"\nreloads: {len(reloads)}, each {statistics.median(reloads):.0f} ms median (load + vet + warm-up, "
          f"max {max(reloads):.0f} ms); p99 with reloads / steady = {p99_ratio:.2f}x")
    print(f"verdicts by version: {v1}: {sum(x.version == v1 for x in rel)}, {v2}: {sum(x.version == v2 for x in rel)}; "
          f"verdicts naming the wrong model: {wrong}")
    total_failed = sum(x.status != 200 for ans in phases.values() for x in ans)
    sys.exit(1 if total_failed or wrong else 0)


if __name__ == "__main__":
    main()
