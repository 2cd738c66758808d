"""The QA batch runner under several thread layouts, alternating rounds, against the planned one.

    .venv/bin/python benchmarks/thread_layout.py [--model BUNDLE | --arch resnet18]
        [--layouts 2x1,3x1,4x1,2x2] [--rounds 3] [--n 240]

A layout is WORKERSxTHREADS (decode workers, inference threads). Prints images/s per layout (median and
every round) and what the plan (inspection/thread_layout.py, as 'defectscope inspect' uses it) picks on
this machine; run under ``taskset -c 0`` for one core. Without --model, a random-init bundle of --arch
(speed does not depend on the weights); frames are 1280x1024 simulated JPEGs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from batch_throughput import make_frames, tiny_model
from service_latency import build_bundle

from inspection.bundle import load_bundle
from inspection.predictor import Predictor
from qa.batch import BatchRunner
from qa.paths import collect_paths
from qa.threads import batch_predictor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--arch", help="a random-init bundle of this architecture at 224x224 (default: the "
                    "mobilenet_v3_small 128x160 of batch_throughput.py)")
    ap.add_argument("--layouts", default="2x1,3x1,4x1,2x2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=240)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        make_frames(frames, args.n)
        built = build_bundle(args.arch, 224, Path(tmp)) if args.arch else tiny_model(Path(tmp) / "model")
        bundle = load_bundle(args.model or built)
        paths = collect_paths([frames])
        _, workers, layout = batch_predictor(bundle, paths)
        planned = f"{workers}x{layout.infer}: {layout.describe()}" if layout else "none (not an ONNX backend)"
        print(f"{bundle.card.arch} {bundle.card.preprocess.input_size}, planned {planned}")
        layouts = [tuple(int(v) for v in spec.split("x")) for spec in args.layouts.split(",")]
        predictors = {lay: Predictor(bundle, batch_size=16, threads=lay[1]) for lay in layouts}
        rates: dict[tuple[int, ...], list[float]] = {lay: [] for lay in layouts}
        for _ in range(args.rounds):
            for lay in layouts:
                runner = BatchRunner(predictors[lay], workers=lay[0], thumbnails=False)
                list(runner.run(paths[:32]))  # warm-up
                t0 = time.perf_counter()
                list(runner.run(paths))
                rates[lay].append(len(paths) / (time.perf_counter() - t0))
        for lay, got in rates.items():
            print(f"  workers {lay[0]}, inference threads {lay[1]}: {statistics.median(got):.1f} images/s "
                  f"(rounds: {', '.join(f'{g:.0f}' for g in got)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
