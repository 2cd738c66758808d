"""QA batch throughput (images/s) against the ceiling this machine allows, measured in the same run.

    .venv/bin/python benchmarks/batch_throughput.py [--images DIR] [--model BUNDLE] [--n 400]
        [--workers W] [--threads T] [--batch-size 16] [--rounds 3]

The ceiling, derived and printed: each stage measured alone on the same files and model, bytes
already in memory: decode (decode, gate and preprocess) at best D images/s with every core, burning
at least d core-seconds per image; inference at best I images/s, burning at least i. No run that needs both stages for
every image beats D (decoding faster than decode alone can), I, or cores / (d + i) (the CPU both
stages burn, spread over every core): the ceiling is the least of the three. (The serial sum on
one core, which earlier versions called the ceiling, is beaten by any pipeline that overlaps the
stages.) The batch runner also reads files, hashes them, draws thumbnails and schedules, so its
share of the ceiling is what those cost. Without --images, 1280x1024 JPEG frames are rendered by
the camera simulator; without --model, a random-init mobilenet_v3_small at 128x160 (speed does not
depend on weights).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.cores import usable_cores
from inspection.explain import Explainer
from inspection.models import create_model
from inspection.predictor import Predictor
from inspection.preprocess import PreprocessConfig
from inspection.types import Outcome
from qa.batch import BatchRunner
from qa.paths import collect_paths
from qa.threads import batch_predictor
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


def stage_rates(bundle, blobs: list[bytes], batch_size: int, cores: int) -> dict[str, float]:
    """Each stage alone: its best rate with every core (images/s) and the least CPU it burns
    (core-seconds per image, all threads of the process), over a few thread counts (ONNX Runtime's
    idle threads spin, so more threads can burn more CPU for the same work)."""
    from concurrent.futures import ThreadPoolExecutor

    out = {"decode": 0.0, "decode_cpu": float("inf"), "infer": 0.0, "infer_cpu": float("inf")}
    items = []
    for n in (cores, 2 * cores):
        predictor = Predictor(bundle, batch_size=batch_size, threads=1)
        with ThreadPoolExecutor(n) as pool:  # OpenCV's decode and resize release the GIL
            list(pool.map(predictor.load, blobs[: 4 * n]))  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            items = list(pool.map(predictor.load, blobs))
            _best(out, "decode", len(blobs), t0, c0)
    x = np.stack([it.inputs for it in items])
    for n in sorted({1, cores}):
        predictor = Predictor(bundle, batch_size=batch_size, threads=n)
        predictor.infer(x[:batch_size])
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(x), batch_size):
            predictor.infer(x[i : i + batch_size])
        _best(out, "infer", len(x), t0, c0)
    return out


def ceiling(bundle, blobs: list[bytes], batch_size: int, cores: int, label: str) -> float:
    """The ceiling now, with its derivation printed."""
    st = stage_rates(bundle, blobs, batch_size, cores)
    cpu_bound = cores / (st["decode_cpu"] + st["infer_cpu"])
    ceil = min(st["decode"], st["infer"], cpu_bound)
    print(f"{label}: decode alone, every core: D = {st['decode']:.1f} images/s, {1000 * st['decode_cpu']:.2f} ms "
          f"CPU each; inference alone, every core: I = {st['infer']:.1f} images/s, {1000 * st['infer_cpu']:.2f} ms "
          f"CPU each;\n  ceiling = min(D, I, cores / CPU per image) = min({st['decode']:.1f}, {st['infer']:.1f}, "
          f"{cores} / {1000 * (st['decode_cpu'] + st['infer_cpu']):.2f} ms = {cpu_bound:.1f}) = {ceil:.1f} images/s")
    return ceil


def _best(out: dict[str, float], stage: str, n: int, t0: float, c0: float) -> None:
    out[stage] = max(out[stage], n / (time.perf_counter() - t0))
    out[f"{stage}_cpu"] = min(out[f"{stage}_cpu"], (time.process_time() - c0) / n)


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
    ap.add_argument("--workers", type=int, default=None, help="decode workers (default: planned, as in 'inspect')")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: planned, as in 'inspect')")
    ap.add_argument("--rounds", type=int, default=3,
                    help="ceiling and runs measured again each round; the median share is the figure")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.images is None:
            args.images = work / "frames"
            args.images.mkdir()
            make_frames(args.images, args.n)
        bundle = load_bundle(args.model or tiny_model(work / "model"))
        paths = collect_paths([args.images])[: args.n]
        blobs = [p.read_bytes() for p in paths]  # also warms the page cache for the runs below
        cores = usable_cores()
        predictor, workers, layout = batch_predictor(bundle, paths, batch_size=args.batch_size, workers=args.workers,
                                                     threads=args.threads)
        threads = layout.infer if layout is not None else args.threads
        print(f"{len(paths)} images, {bundle.card.arch} {bundle.card.preprocess.input_size}, "
              f"{predictor.backend.name} backend, batch {args.batch_size}, {workers} workers, "
              f"{threads} inference threads, {cores} cores" + (f" (planned: {layout.describe()})" if layout else ""))
        runs = {
            "batch runner, verdicts only": BatchRunner(predictor, workers=workers, thumbnails=False),
            "batch runner + thumbnails (report, no heatmaps)": BatchRunner(predictor, workers=workers),
            "batch runner + thumbnails + heatmaps (fail/review)": BatchRunner(
                predictor, workers=workers, explainer=Explainer(bundle, threads=1)),
        }
        shares: dict[str, list[float]] = {name: [] for name in runs}
        # a shared machine's speed drifts within seconds: the ceiling is measured between every two
        # runs, and each run is held to the mean of the ceilings measured just before and just after it
        before = ceiling(bundle, blobs, args.batch_size, cores, "start")
        for r in range(args.rounds):
            for name, runner in runs.items():
                rate, flagged = timed_run(runner, paths)
                after = ceiling(bundle, blobs, args.batch_size, cores, f"after round {r + 1}, {name}")
                ceil, before = (before + after) / 2, after
                shares[name].append(rate / ceil)
                extra = f"   ({flagged} heatmaps)" if runner.explainer is not None else ""
                print(f"  -> {name}: {rate:.1f} images/s, {rate / ceil:.0%} of {ceil:.1f}{extra}")
        print(f"median over {args.rounds} rounds, share of the same round's ceiling:")
        for name, got in shares.items():
            print(f"  {name:<54}{statistics.median(got):>6.0%}   (rounds: {', '.join(f'{g:.0%}' for g in got)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
