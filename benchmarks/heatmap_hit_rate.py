"""How often the Grad-CAM peak lies on the defect, on simulated frames whose defect mask is known.

    .venv/bin/python benchmarks/heatmap_hit_rate.py --model runs/qa/bundle [--n 60] [--size 240x192]

Frames are rendered fresh by the camera simulator (seeds the training set did not use), ``--n``
per defect class, at the camera size the model was trained on. A hit: the heatmap's maximum
pixel is a defect pixel. Chance: the mean share of the frame the defect covers (a peak placed
at random). Also shown: how many frames the model flags (fail or review), the ones a QA report
draws heatmaps for. The tolerant hit counts a peak within ``--tolerance``
pixels of the defect (its chance grows with it): Grad-CAM's last feature map is 32x coarser than
the model input, so a thin scratch can be found yet missed by a few pixels.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from datasets.simulator import Simulator
from inspection.bundle import load_bundle
from inspection.explain import Explainer, peak_hit_rate
from inspection.predictor import Predictor
from inspection.types import Outcome


def render(recipe: str, size: tuple[int, int], label: str, n: int, seed: int) -> tuple[list, list]:
    sim = Simulator(recipe, size=size)
    parts = [sim.render(label, seed=(seed, i)) for i in range(n)]
    return [p.image for p in parts], [p.mask for p in parts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model bundle trained on simulated frames")
    ap.add_argument("--n", type=int, default=60, help="frames per defect class")
    ap.add_argument("--size", default="240x192", help="frame WIDTHxHEIGHT")
    ap.add_argument("--recipe", default="flange")
    ap.add_argument("--seed", type=int, default=90210, help="differs from any dataset synth seed")
    ap.add_argument("--method", nargs="+", default=["fused", "gradcam"], help="heatmap methods to compare")
    ap.add_argument("--tolerance", type=int, default=None,
                    help="pixels for the tolerant hit (default: half a stride-32 feature cell in frame pixels)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    bundle = load_bundle(args.model)
    predictor = Predictor(bundle, batch_size=16)
    for method in args.method:
        explainer = Explainer(bundle, method=method, threads=1)
        table(explainer, predictor, args, (h, w))
    return 0


def table(explainer: Explainer, predictor: Predictor, args: argparse.Namespace, size: tuple[int, int]) -> None:
    card = explainer.card
    h, w = size
    tol = args.tolerance if args.tolerance is not None else round(16 * w / card.preprocess.input_size[1])
    defects = [c for c in card.classes if c not in card.pass_classes]
    print(f"\nmethod {explainer.method} (layers {explainer.layer_name!r}, {explainer.stem_name!r}); model "
          f"{card.name}@{card.version} ({card.arch}, input {card.preprocess.input_size}); {args.n} frames per class "
          f"at {w}x{h}; tolerant hit: within {tol} px")
    print(f"{'class':<14}{'frames':>7}{'hit':>8}{'chance':>8}{'x':>6}{'hit<=tol':>10}{'chance':>8}{'x':>6}"
          f"{'flagged':>9}")
    totals = np.zeros(5)  # n, hits, cover, tolerant hits, tolerant cover
    for k, label in enumerate(defects):
        images, masks = render(args.recipe, (h, w), label, args.n, args.seed + k)
        strict = peak_hit_rate(explainer, images, masks)
        near = peak_hit_rate(explainer, images, masks, tolerance=tol)
        verdicts = [it.verdict for it in predictor.run([predictor.preparer.from_image(img) for img in images])]
        flagged = sum(v.outcome in (Outcome.FAIL, Outcome.REVIEW) for v in verdicts)
        totals += (strict.n, strict.hits, strict.chance * strict.n, near.hits, near.chance * near.n)
        print(row(label, strict.n, strict.rate, strict.chance, near.rate, near.chance) + f"{flagged:>9}")
    n = totals[0]
    print(row("all", int(n), totals[1] / n, totals[2] / n, totals[3] / n, totals[4] / n))


def row(name: str, n: int, rate: float, chance: float, near: float, near_chance: float) -> str:
    return (f"{name:<14}{n:>7}{rate:>8.1%}{chance:>8.2%}{rate / chance:>6.1f}{near:>10.1%}{near_chance:>8.1%}"
            f"{near / near_chance:>6.1f}")


if __name__ == "__main__":
    sys.exit(main())
