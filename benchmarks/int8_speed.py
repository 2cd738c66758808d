"""INT8 against float ONNX Runtime: the gate's verdict, then the same model on the same input, side
by side at batch 1, for each bundle and the dataset it was trained on.

    .venv/bin/python benchmarks/int8_speed.py BUNDLE:DATASET [BUNDLE:DATASET ...] [--threads 1 2] [--repeats 50]

Each bundle is copied to a temporary folder and quantized there (``training.quantize``: calibrated
and gated on its own validation images); the timing input is one of those images as the bundle's
preprocessing hands it to the model (a whole frame for a native-resolution model). Float and INT8
alternate in blocks over ten rounds, so a busy machine slows both alike; the figure is the ratio of
medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import inspection  # noqa: E402,F401 (OpenCV's pixel limit before cv2 decodes anything)
from inspection.runtime import OnnxBackend  # noqa: E402
from training.backend_timing import line_input  # noqa: E402
from training.quantize import QuantizationRefused, quantize_bundle  # noqa: E402

ROUNDS = 10


def ratio(bundle, x, threads: int, repeats: int) -> tuple[float, float]:
    backends = [OnnxBackend(bundle, threads), OnnxBackend(bundle, threads, int8=True)]
    times: list[list[float]] = [[], []]
    for b in backends:
        for _ in range(5):
            b(x)
    for _ in range(ROUNDS):  # blocks, not single calls: the idle session's threads spin for a while after a run
        for i, b in enumerate(backends):
            time.sleep(0.05)
            for _ in range(repeats // ROUNDS):
                t0 = time.perf_counter()
                b(x)
                times[i].append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", metavar="BUNDLE:DATASET")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=200)
    a = ap.parse_args()
    for pair in a.pairs:
        src, data = pair.split(":", 1)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "bundle"
            shutil.copytree(src, copy)
            t0 = time.perf_counter()
            try:
                bundle, gate = quantize_bundle(copy, data)
            except QuantizationRefused as exc:
                print(f"{src}: REFUSED\n{exc}\n")
                continue
            print(f"{src} ({bundle.card.arch}): gate {gate.summary()} [{time.perf_counter() - t0:.0f} s]")
            x = line_input(bundle, data)[None]
            for threads in a.threads:
                f, q = ratio(bundle, x, threads, a.repeats)
                print(f"  {threads} thread(s), input {x.shape[3]}x{x.shape[2]}: float {f:.2f} ms, int8 {q:.2f} ms, "
                      f"{f / q:.2f}x")


if __name__ == "__main__":
    main()
