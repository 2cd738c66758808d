"""Per-architecture inference latency, PyTorch vs ONNX Runtime, and full vs reduced JPEG decoding.

    .venv/bin/python benchmarks/inference_latency.py [--size 224] [--repeats 20] [--arch NAME ...]

Random-init weights: latency does not depend on what the weights are. Both backends use the
same thread count and run side by side in one process, so the ratio is fair on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from inspection.card import ModelCard
from inspection.decode import decode_image
from inspection.models import create_model, list_models
from inspection.preprocess import PreprocessConfig, Preprocessor
from inspection.runtime import OnnxBackend, TorchBackend
from training.export import save_bundle


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_arch(arch: str, size: int, repeats: int, threads: int, workdir: Path) -> list[str]:
    card = ModelCard(name=arch, version="", arch=arch, classes=("good", "scratch", "dent"), pass_classes=("good",),
                     preprocess=PreprocessConfig(input_size=(size, size)))
    bundle = save_bundle(workdir / arch, create_model(arch, num_classes=3), card)
    backends = {"torch": TorchBackend(bundle, device="cpu", threads=threads), "onnx": OnnxBackend(bundle, threads)}
    rows = []
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
        t = {name: median_ms(lambda b=b, x=x: b(x), repeats) for name, b in backends.items()}
        rows.append(f"| {arch} | {batch} | {t['torch']:.1f} | {t['onnx']:.1f} | {t['torch'] / t['onnx']:.2f}x |")
    return rows


def camera_jpeg(noise_sigma: float) -> bytes:
    """A camera-like 1280x1024 frame: a machined part on a background plus sensor noise.

    JPEG decode time grows with entropy, so the benchmark shows a clean and a noisy sensor.
    """
    rng = np.random.default_rng(0)
    frame = np.full((1024, 1280, 3), 90, np.uint8)
    cv2.circle(frame, (640, 512), 380, (170, 170, 175), -1)
    cv2.circle(frame, (640, 512), 150, (60, 60, 60), -1)
    noisy = np.clip(frame.astype(np.int16) + rng.normal(0, noise_sigma, frame.shape), 0, 255).astype(np.uint8)
    return cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def bench_decode(repeats: int, size: int) -> list[str]:
    """Decode plus resize to the model input: the cost the pipeline actually pays."""
    pre = Preprocessor(PreprocessConfig(input_size=(size, size)))
    rows = []
    for sigma in (2.0, 6.0):
        data = camera_jpeg(sigma)
        full = median_ms(lambda d=data: pre.prepare(decode_image(d)[0]), repeats)
        reduced = median_ms(lambda d=data: pre.prepare(decode_image(d, min_size=(size, size))[0]), repeats)
        shape = decode_image(data, min_size=(size, size))[0].shape
        rows.append(f"| sensor noise sigma={sigma:g} ({len(data) // 1024} KB) | {full:.2f} | "
                    f"{reduced:.2f} ({shape[1]}x{shape[0]}) | {full / reduced:.2f}x |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="square model input size")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--arch", nargs="*", default=list_models())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# inference latency, input {args.size}x{args.size}, {args.threads} threads, "
          f"median of {args.repeats} (ms)\n")
    print("| architecture | batch | PyTorch eager | ONNX Runtime | PyTorch / ONNX |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            for row in bench_arch(arch, args.size, args.repeats, args.threads, Path(tmp)):
                print(row, flush=True)
    print(f"\n# decoding a 1280x1024 JPEG and resizing it to {args.size}x{args.size} (ms, median)\n")
    print("| frame | full decode | reduced decode | speed-up |")
    print("|---|---|---|---|")
    for row in bench_decode(args.repeats * 5, args.size):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
