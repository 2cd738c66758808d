"""A plant on one machine: PostgreSQL, Mosquitto, nginx and two service instances, 16 stations for
60 s through the balancer, a model promotion (registry champion, ``--watch``) in the middle.

    .venv/bin/python benchmarks/plant_network.py [--model models/demo] [--stations 16] [--seconds 60]
        [--instances 2] [--threads 1] [--size 512 640] [--frames 160] [--restart-one]

Prints requests, failed requests (must be 0), throughput and latency through nginx, verdicts
answered vs in PostgreSQL vs received on MQTT (must be equal), the split between the instances,
and whether the alarms the instances logged equal those of one monitor fed the same parts in the
same order (four stations run a fault: 60 % failing parts for parts 150-300). PostgreSQL runs
durable (fsync on), as in a plant. The harness is tests/plant_network.py (the test runs it short).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import inspection  # noqa: E402,F401 (before cv2 decodes anything: OpenCV's pixel limit)
from tests.plant_network import run_plant  # noqa: E402


def frames(n: int, size: tuple[int, int]) -> list[bytes]:
    import cv2

    from datasets.simulator.camera import SimulatedCamera

    out = []
    with SimulatedCamera(seed=7, n=n, size=size, defect_rate=0.5) as cam:
        for frame in cam:
            out.append(cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "demo")
    ap.add_argument("--stations", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--size", type=int, nargs=2, default=(512, 640), metavar=("H", "W"))
    ap.add_argument("--frames", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1, help="Inference threads per instance.")
    ap.add_argument("--restart-one", action="store_true", help="Also restart one instance under load (at 3/4).")
    a = ap.parse_args()
    if not (a.model / "card.json").is_file():
        sys.exit(f"no model at {a.model}: run `make demo` once (it trains models/demo), or pass --model")
    imgs = frames(a.frames, tuple(a.size))
    with tempfile.TemporaryDirectory() as tmp:
        f = run_plant(Path(tmp), a.model, imgs, stations=a.stations, duration_s=a.seconds, instances=a.instances,
                      durable=True, threads=a.threads, restart_one=a.restart_one)
    print("\n".join(f.lines()))
    ok = (f.failed == 0 and f.in_database == f.answered == f.on_mqtt and f.alarms_logged == f.alarms_single
          and len(set(f.served_after)) == 1)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
