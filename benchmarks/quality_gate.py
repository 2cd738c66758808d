"""Image-quality gate: its cost per frame next to the classifier's, and what it refuses.

    .venv/bin/python benchmarks/quality_gate.py            # 60 training frames, 200 held out
    .venv/bin/python benchmarks/quality_gate.py --train 120 --held-out 400

Frames are the camera simulator's flange parts at 1280x1024, JPEG-encoded and decoded the way
the service decodes them for a 128x160 model (reduced JPEG decode). The limits are learned from
``--train`` frames as training does (``inspection.quality.learn_limits``); held-out frames are
then gated as they come and after real OpenCV damage (Gaussian blur in full-resolution pixels,
a lamp at a fraction of its light). The classifier is mobilenet_v3_small through the bundle's
ONNX Runtime backend (random weights: the cost does not depend on them), batch 1, 1 thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from datasets.simulator import GOOD, Simulator
from inspection.card import ModelCard
from inspection.models import create_model
from inspection.predictor import Predictor, Preparer
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityGate, learn_limits
from training.export import save_bundle

PRE = PreprocessConfig(input_size=(128, 160))


def jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def timed(fn, items, repeat: int = 3) -> float:
    """Median ms per item over ``repeat`` passes."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for it in items:
            fn(it)
        runs.append((time.perf_counter() - t0) * 1e3 / len(items))
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=60)
    ap.add_argument("--held-out", type=int, default=200)
    args = ap.parse_args()
    print(f"command: python benchmarks/quality_gate.py {' '.join(sys.argv[1:])}".rstrip())
    sim = Simulator("flange", size=(1024, 1280))
    render = lambda s: sim.render(GOOD if s % 4 else "scratch", seed=s).image  # noqa: E731
    decode = Preparer(PRE).decode
    train = [decode(jpeg(render(s)))[0] for s in range(args.train)]
    limits = learn_limits(train, PRE)
    raw = [render(10_000 + s) for s in range(args.held_out)]
    held = [decode(jpeg(img)) for img in raw]

    with tempfile.TemporaryDirectory() as tmp:
        card = ModelCard(name="bench", version="", arch="mobilenet_v3_small", classes=("good", "scratch"),
                         pass_classes=("good",), preprocess=PRE, quality=limits)
        bundle = save_bundle(Path(tmp) / "b", create_model("mobilenet_v3_small", num_classes=2).eval(), card)
        ins = Predictor(bundle, backend="onnx", threads=1)
        gate = QualityGate(limits, PRE)
        data = [jpeg(img) for img in raw[:50]]
        chw = [ins.load(d).inputs for d in data]
        t_decode = timed(decode, data)
        t_gate = timed(lambda h: gate.check(h[0], h[1]), held[:50])
        t_pre = timed(lambda h: ins.preparer.preprocessor(h[0], h[1]), held[:50])
        t_infer = timed(lambda x: ins.infer(x[None]), chw)
    framing = (f", part area {limits.part[0]:.0%}..{limits.part[1]:.0%}, centre offset <= "
               f"{limits.offset_max:.1%}") if limits.part else ", no framing check"
    print(f"\nlimits from {limits.images} frames: brightness {limits.brightness[0]:.0f}..{limits.brightness[1]:.0f}, "
          f"saturated <= {limits.saturated_max:.2%}, sharpness >= {limits.sharpness_min:.3f}{framing}")
    print("\n| stage (per frame, 1 thread) | ms | vs classifier |\n|---|---|---|")
    for name, ms in (("decode (reduced JPEG)", t_decode), ("quality gate", t_gate), ("preprocess", t_pre),
                     ("classifier (ONNX, batch 1)", t_infer)):
        print(f"| {name} | {ms:.3f} | {ms / t_infer:.2f}x |")

    def refused(imgs) -> str:
        res = [gate.check(*decode(jpeg(i))[:2]) for i in imgs]
        bad = [r.code for r in res if not r.ok]
        top = max(set(bad), key=bad.count) if bad else "-"
        return f"{len(bad)}/{len(res)} | {top}"

    sub = raw[: min(60, len(raw))]
    print("\n| held-out frames | refused | main reason |\n|---|---|---|")
    print(f"| as captured | {refused(raw)} |")
    for sigma in (2, 4, 6, 8, 12):
        print(f"| Gaussian blur sigma {sigma} px | {refused([cv2.GaussianBlur(i, (0, 0), sigma) for i in sub])} |")
    for gain in (0.8, 0.6, 0.4):
        print(f"| light x{gain} | {refused([cv2.convertScaleAbs(i, alpha=gain) for i in sub])} |")
    print(f"| light x2.5 | {refused([cv2.convertScaleAbs(i, alpha=2.5) for i in sub])} |")
    belt = [np.clip(cv2.randn(np.zeros((1024, 1280), np.float32), 60, 4), 0, 255).astype(np.uint8) for _ in range(5)]
    print(f"| empty belt (no part) | {refused(belt)} |")


if __name__ == "__main__":
    main()
