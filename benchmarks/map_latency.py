"""Full-frame latency of a bundle on a real frame: the network alone (ONNX Runtime and PyTorch) and the
whole verdict (decode, gate, preprocess, inference, regions), median and p99, side by side.

    .venv/bin/python benchmarks/map_latency.py --model runs/bench-ksdd/fold0/bundle \\
        --image data/kolektorsdd/images/defect/kos10_Part5.jpg [--repeats 200] [--threads 2]

For a native-resolution defect-map model this is the figure that matters: the frame is inferred
whole, at the card's scale, not shrunk to a thumbnail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspection.bundle import load_bundle
from inspection.predictor import Predictor


def timed(fn, repeats: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return float(np.median(ms)), float(np.percentile(ms, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = ap.parse_args()
    bundle = load_bundle(a.model)
    data = a.image.read_bytes()
    predictors = {b: Predictor(bundle, backend=b, threads=a.threads, batch_size=1) for b in ("onnx", "torch")}
    item = predictors["onnx"].load(data)
    x = item.inputs[None]
    pre = bundle.card.preprocess
    print(f"model {bundle.card.arch} {bundle.card.name}@{bundle.card.version}  scale {pre.scale}  frame "
          f"{item.size[1]}x{item.size[0]} -> model input {x.shape[3]}x{x.shape[2]}  threads {a.threads}")
    for name, p in predictors.items():
        net = timed(lambda p=p: p.infer(x), a.repeats)
        whole = timed(lambda p=p: p.inspect(data), a.repeats)
        print(f"{name:>5}: network median {net[0]:.1f} ms p99 {net[1]:.1f} ms · whole verdict median "
              f"{whole[0]:.1f} ms p99 {whole[1]:.1f} ms")


if __name__ == "__main__":
    main()
