"""QA batch throughput (images/s) against the ceiling measured in the same run.

    .venv/bin/python benchmarks/batch_throughput.py [--images DIR] [--model BUNDLE] [--n 400]
        [--workers 2] [--batch-size 16]

Ceiling: 1 / (pure decode + pure inference time per image), each stage timed alone on the same
files (bytes already in memory, so no disk) and the same model: what a loop doing nothing but
those two stages one after the other would reach. The batch runner adds file reads, sha256,
preprocessing, thumbnails and scheduling, and wins time back by overlapping decode with
inference. Without --images, 1280x1024 JPEG frames are rendered by the camera simulator;
without --model, a random-init mobilenet_v3_small at 128x160 (speed does not depend on weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.explain import Explainer
from inspection.models import create_model
from inspection.predictor import Predictor
from inspection.preprocess import PreprocessConfig
from inspection.types import Outcome
from qa.batch import BatchRunner
from qa.paths import collect_paths
from training.export import save_bundle


def make_frames(out: Path, n: int) -> None:
    import cv2

    from datasets.simulator import Simulator

    sim = Simulator("flange", size=(1024, 1280))
    labels = sim.labels
    for i in range(n):
        part = sim.render(labels[i % len(labels)], seed=i, jpeg=False)
        cv2.imwrite(str(out / f"frame_{i:05d}.jpg"), part.image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def tiny_model(out: Path) -> Path:
    card = ModelCard(name="bench", version="", arch="mobilenet_v3_small", classes=("good", "scratch", "dent"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(128, 160)))
    save_bundle(out, create_model("mobilenet_v3_small", num_classes=3), card)
    return out


def ceiling(predictor: Predictor, blobs: list[bytes]) -> tuple[float, float]:
    """(decode ms, inference ms) per image, each stage alone (decode: decode, gate and preprocess)."""
    items = [predictor.load(b) for b in blobs[:8]]  # warm-up
    t0 = time.perf_counter()
    items = [predictor.load(b) for b in blobs]
    decode = (time.perf_counter() - t0) / len(blobs)
    x = np.stack([it.inputs for it in items])
    bs = predictor.batch_size
    predictor.infer(x[:bs])
    t0 = time.perf_counter()
    for i in range(0, len(x), bs):
        predictor.infer(x[i : i + bs])
    infer = (time.perf_counter() - t0) / len(x)
    return decode * 1e3, infer * 1e3


def timed_run(runner: BatchRunner, paths: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()
    results = list(runner.run(paths))
    flagged = sum(r.verdict is not None and r.verdict.outcome != Outcome.PASS for r in results)
    return len(paths) / (time.perf_counter() - t0), flagged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, help="folder of images (default: render --n simulated frames)")
    ap.add_argument("--model", type=Path, help="model bundle (default: random-init mobilenet_v3_small 128x160)")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None,
                    help="inference threads (default as in 'defectscope inspect': the cores the workers leave)")
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = max(1, len(os.sched_getaffinity(0)) - args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.images is None:
            args.images = work / "frames"
            args.images.mkdir()
            make_frames(args.images, args.n)
        bundle = load_bundle(args.model or tiny_model(work / "model"))
        paths = collect_paths([args.images])[: args.n]
        blobs = [p.read_bytes() for p in paths]  # also warms the page cache for the runs below
        predictor = Predictor(bundle, batch_size=args.batch_size, threads=args.threads)
        dec, inf = ceiling(predictor, blobs)
        ceil = 1000.0 / (dec + inf)
        print(f"{len(paths)} images, {bundle.card.arch} {bundle.card.preprocess.input_size}, "
              f"{predictor.backend.name} backend, batch {args.batch_size}, {args.workers} workers")
        print(f"ceiling: decode {dec:.2f} ms + inference {inf:.2f} ms per image = {ceil:.1f} images/s")
        print(f"{'pipeline':<54}{'images/s':>10}{'of ceiling':>12}")
        runs = {
            "batch runner, verdicts only": BatchRunner(predictor, workers=args.workers, thumbnails=False),
            "batch runner + thumbnails (report, no heatmaps)": BatchRunner(predictor, workers=args.workers),
            "batch runner + thumbnails + heatmaps (fail/review)": BatchRunner(
                predictor, workers=args.workers, explainer=Explainer(bundle, threads=1)),
        }
        for name, runner in runs.items():
            rate, flagged = timed_run(runner, paths)
            extra = f"   ({flagged} heatmaps)" if runner.explainer is not None else ""
            print(f"{name:<54}{rate:>10.1f}{rate / ceil:>11.0%}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
