"""QA report size and the time headless Chromium takes to open it, for a 5,000-image lot.

    .venv/bin/python benchmarks/report_size.py [--n 5000] [--distinct 200] [--flagged 0.831]
        [--model BUNDLE] [--out DIR] [--screenshot docs/qa-report-5000.png] [--baseline 8116db6]

``--distinct`` simulated 1280x1024 flange frames (half good, half spread over the defect types)
go through the real BatchRunner: its own thumbnails and Grad-CAM heatmaps, from a random-init
mobilenet_v3_small 128x160 (seeded) or ``--model``. Their ItemResults are then replayed as ``--n``
files (lot/<truth>/part_NNNNN.jpg) plus 4 error rows into the real ReportWriter, with the labels
as truth (the evaluation view). A random-init model gives every frame the same score, so each
row's verdict is drawn from a seeded scenario; the default mix is the end-to-end run of
BENCHMARKS.md ("QA batch throughput": 4,156 heatmaps for 5,000 frames, a weak model that flags
71 % of good parts), the run whose report was 41 MB. The size depends on how many rows carry a
heatmap and on what the heatmaps show, not on how right the verdicts are.

Opening: Chromium (playwright, /usr/bin/chromium) loads report.html from file:// until the load
event has fired and the table holds its rows: the median of ``--opens`` fresh pages, and the
bytes the page read (the HTML and the images it showed). ``--baseline REV`` first runs the same
scenario with qa/ from git revision REV (8116db6: every image inline as base64 JPEG).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
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
from qa.batch import BatchRunner, ItemResult
from qa.report import ReportWriter, Truth
from training.export import save_bundle

CHROMIUM = "/usr/bin/chromium"
FAIL, REVIEW = 0.5, 0.3  # the scenario's thresholds on defect_score
ERRORS = ("the file is empty", "not an image (unknown format)", "truncated JPEG: decoding stopped early",
          "the PNG header declares 900000000 pixels, over the limit of 178956970")


def render_frames(out: Path, n: int) -> list[tuple[Path, str]]:
    import cv2

    from datasets.simulator import GOOD, Simulator

    sim = Simulator("flange", size=(1024, 1280))
    frames = []
    for i in range(n):
        label = GOOD if i % 2 == 0 else sim.recipe.defects[(i // 2) % len(sim.recipe.defects)]
        part = sim.render(label, seed=i, jpeg=False)
        path = out / f"frame_{i:05d}.jpg"
        cv2.imwrite(str(path), part.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append((path, label))
    return frames


def inspect_frames(frames: list[tuple[Path, str]], work: Path, model: Path | None) -> tuple[list[ItemResult],
                                                                                          ModelCard]:
    """Real results: verdict, thumbnail and a heatmap for every frame (explain=all outcomes)."""
    if model is not None:
        bundle = load_bundle(model)
    else:
        import torch

        from datasets.simulator import GOOD, Simulator

        labels = (GOOD, *Simulator("flange").recipe.defects)
        card = ModelCard(name="bench", version="", arch="mobilenet_v3_small", classes=labels, pass_classes=("good",),
                         preprocess=PreprocessConfig(input_size=(128, 160)))
        torch.manual_seed(0)  # a random model's Grad-CAM is noise: the same noise each run, the same bytes
        net = create_model("mobilenet_v3_small", num_classes=len(labels))
        bundle = load_bundle(save_bundle(work / "model", net, card).path)
    predictor = Predictor(bundle, batch_size=16, threads=1)
    runner = BatchRunner(predictor, workers=2, explainer=Explainer(bundle, threads=1), explain=set(Outcome))
    return list(runner.run([p for p, _ in frames])), bundle.card


def scenario(res: ItemResult, path: str, truth: str, classes: tuple[str, ...], rng: np.random.Generator,
             flag_good: float, flag_defect: float) -> ItemResult:
    """``res`` as the file ``path``, with a verdict drawn for its truth; a heatmap only when flagged."""
    defects = classes[1:]
    flagged = rng.random() < (flag_good if truth == "good" else flag_defect)
    if not flagged:
        outcome, label, score = Outcome.PASS, "good", rng.uniform(0.02, REVIEW)
    else:
        outcome = Outcome.FAIL if rng.random() < 0.8 else Outcome.REVIEW
        label = truth if truth != "good" and rng.random() < 0.6 else str(rng.choice(defects))
        score = rng.uniform(FAIL, 1.0) if outcome is Outcome.FAIL else rng.uniform(REVIEW, FAIL)
    top = label if label != "good" else defects[0]  # the defect class holding most of the defect score
    scores = {c: float(score * (0.8 if c == top else 0.2 / (len(defects) - 1))) for c in defects}
    scores["good"] = float(1 - score)
    verdict = dataclasses.replace(res.verdict, outcome=outcome, label=label, defect_score=float(score),
                                  confidence=scores[label], scores=scores, source=path, frame_id=path)
    return dataclasses.replace(res, path=path, verdict=verdict, heatmap=res.heatmap if flagged else None,
                               heatmap_target=label if flagged else None,
                               heatmap_peak=res.heatmap_peak if flagged else None)


def build_report(out: Path, lot: Path, results: list[ItemResult], truths: list[str], card: ModelCard, n: int,
                 flagged: float, seed: int) -> tuple[float, int]:
    """The report of ``n`` replayed files and 4 error rows; (seconds in the writer, heatmaps)."""
    rng = np.random.default_rng(seed)
    flag_good = min(0.71, flagged)  # the weak model of BENCHMARKS.md: 71 % of good parts flagged
    flag_defect = min(1.0, 2 * flagged - flag_good)  # half the frames are defective
    rows, labels = [], {}
    for i in range(n):
        j = i % len(results)
        truth = truths[j]
        path = str(lot / truth / f"part_{i:05d}.jpg")
        rows.append(scenario(results[j], path, truth, tuple(card.classes), rng, flag_good, flag_defect))
        labels[Path(path).resolve()] = truth
    for k, why in enumerate(ERRORS):
        path = str(lot / "broken" / f"broken_{k}.jpg")
        rows.append(ItemResult(path, error=why))
    t0 = time.perf_counter()
    writer = ReportWriter(out, model=f"{card.name}@{card.version}", classes=card.classes,
                          pass_classes=card.pass_classes)
    for r in rows:
        writer.add(r)
    writer.finish([Path(r.path) for r in rows], Truth(labels, str(lot)))
    return time.perf_counter() - t0, sum(r.heatmap is not None for r in rows)


def folder_sizes(out: Path) -> dict[str, int]:
    """Bytes per top-level entry of the report folder (a folder: all files under it)."""
    sizes = {}
    for entry in sorted(out.iterdir()):
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        sizes[entry.name + ("/" if entry.is_dir() else "")] = sum(f.stat().st_size for f in files)
    return sizes


OPENED = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const imgs = [...document.images].filter(i => i.complete && i.naturalWidth && i.currentSrc.startsWith('file:'));
  return {load: nav.loadEventEnd, rows: document.querySelectorAll('#body tr').length,
          info: document.getElementById('pageinfo').textContent, images: imgs.map(i => i.currentSrc)};
}"""


def wait_until(page, js: str, timeout: float = 120.0) -> None:
    """Poll ``js`` (an expression): playwright's wait_for_function evaluates strings in the page, which
    the report's Content-Security-Policy forbids, as it should."""
    end = time.perf_counter() + timeout
    while not page.evaluate(js):
        if time.perf_counter() > end:
            raise TimeoutError(f"still false after {timeout:.0f} s: {js}")
        time.sleep(0.01)


def open_in_chromium(html: Path, opens: int, screenshot: Path | None) -> dict:
    from urllib.parse import unquote, urlparse

    from playwright.sync_api import sync_playwright

    walls, loads, seen, errors = [], [], {}, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for k in range(opens):
                page = browser.new_page(viewport={"width": 1440, "height": 1100})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                t0 = time.perf_counter()
                page.goto(html.as_uri(), wait_until="load", timeout=120_000)
                wait_until(page, "document.querySelectorAll('#body tr').length > 0")
                walls.append(time.perf_counter() - t0)
                page.wait_for_timeout(300)  # let the lazy images in view arrive before counting them
                seen = page.evaluate(OPENED)
                loads.append(seen["load"] / 1000)
                if k == opens - 1 and screenshot is not None:  # the table, where the images are
                    page.evaluate("document.getElementById('rows').closest('section').scrollIntoView()")
                    wait_until(page, "[...document.querySelectorAll('#body img')].slice(0, 24).every(i => i.complete)")
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                page.close()
        finally:
            browser.close()
    read = html.stat().st_size + sum(Path(unquote(urlparse(u).path)).stat().st_size for u in set(seen["images"]))
    return {"wall": statistics.median(walls), "load": statistics.median(loads), "first": walls[0],
            "rows": seen["rows"], "info": seen["info"], "images": len(set(seen["images"])), "read": read,
            "errors": errors}


def baseline(rev: str, args: argparse.Namespace) -> None:
    """This benchmark, same scenario, with the qa package of git revision ``rev`` first on the path."""
    import qa

    root = Path(qa.__file__).resolve().parents[1]
    keys = ("n", "distinct", "flagged", "seed", "opens", "model")
    same = [f"--{k}={getattr(args, k)}" for k in keys if getattr(args, k) is not None]
    with tempfile.TemporaryDirectory() as old:
        tree = subprocess.run(["git", "-C", str(root), "archive", rev, "qa"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=tree, check=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([old, str(root)])}
        print(f"--- baseline: qa/ at {rev}", flush=True)
        subprocess.run([sys.executable, __file__, *same, "--screenshot="], env=env, check=True)
        print("--- this tree", flush=True)


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="image files in the report (plus 4 error rows)")
    ap.add_argument("--distinct", type=int, default=200, help="frames rendered and inspected for real")
    ap.add_argument("--flagged", type=float, default=4156 / 5000, help="share of images with a fail/review verdict")
    ap.add_argument("--model", type=Path, help="a bundle trained on the flange recipe, for its real heatmaps "
                    "(default: random-init mobilenet_v3_small 128x160)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--opens", type=int, default=3)
    ap.add_argument("--out", type=Path, help="keep the report here (default: a temporary folder)")
    ap.add_argument("--screenshot", default="docs/qa-report-5000.png", help="PNG of the table ('' for none)")
    ap.add_argument("--baseline", metavar="REV", help="first run this benchmark with qa/ from git revision REV")
    args = ap.parse_args(argv)
    if args.baseline:
        baseline(args.baseline, args)
    shot = Path(args.screenshot) if args.screenshot else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "frames").mkdir()
        t0 = time.perf_counter()
        frames = render_frames(work / "frames", args.distinct)
        results, card = inspect_frames(frames, work, args.model)
        import qa

        print(f"qa from {Path(qa.__file__).parent}; {len(frames)} simulated 1280x1024 frames rendered and "
              f"inspected in {time.perf_counter() - t0:.1f} s")
        out = args.out or work / "report"
        secs, heatmaps = build_report(out, work / "lot", results, [t for _, t in frames], card, args.n,
                                      args.flagged, args.seed)
        sizes = folder_sizes(out)
        total = sum(sizes.values())
        print(f"report of {args.n} images + {len(ERRORS)} error rows ({heatmaps} heatmaps) written in {secs:.1f} s "
              f"({os.cpu_count()} cores)")
        for name, size in sizes.items():
            count = sum(1 for f in (out / name).rglob("*") if f.is_file()) if name.endswith("/") else 1
            print(f"  {name:<18}{mb(size):>12}" + (f"  ({count} files, {size / max(count, 1) / 1e3:.2f} kB each)"
                                                   if count > 1 else ""))
        html = (out / "report.html").read_text(encoding="utf-8")
        # what a reader needs: report.html and the image folders it references (before: none, all inline)
        shown = sum(v for k, v in sizes.items() if k == "report.html" or (k.endswith("/") and f'"{k}' in html))
        print(f"report (report.html and the images it shows): {mb(shown)}; whole folder: {mb(total)}")
        o = open_in_chromium(out / "report.html", args.opens, shot)
        print(f"Chromium, file://: load event + table of {o['rows']} rows ('{o['info']}') in {o['wall']:.2f} s "
              f"(median of {args.opens}; first {o['first']:.2f} s; load event at {o['load']:.2f} s in-page); "
              f"read on open: {mb(o['read'])} (report.html and {o['images']} images shown)")
        for e in o["errors"]:
            print(f"  console error: {e}")
        if shot:
            print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
