"""The retraining loop end to end, on simulated data (issue 7):

    .venv/bin/python examples/retrain_loop.py [--work runs/retrain-loop] [--quick]

1. Synthesise a steel-strip line whose training data has cracks and scratches but no stains, a
   frozen golden set with all three defect types, and a pool of stain images.
2. Train the champion, register it, and serve it (real uvicorn) from the registry.
3. Show that it misses stains: the escape rate on the golden set's stains, via /v1/inspect.
4. Post stain samples through POST /v1/samples (a new defect class) as a QA engineer would.
5. Retrain: fine-tune a challenger, compare both on the golden set, promote it if no worse.
6. Reload the running service while 16 stations post images: no request may fail.
7. Print the stain escape rate before and after, then roll back and show the old champion serves.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.layout import Dataset, DatasetInfo  # noqa: E402
from datasets.synth import synthesize  # noqa: E402
from registry import ModelRegistry  # noqa: E402
from serving.config import load_settings  # noqa: E402
from serving.loadgen import StationLoad  # noqa: E402
from serving.server import start_in_background  # noqa: E402
from training import TrainConfig  # noqa: E402
from training.promotion import PromotionRules  # noqa: E402
from training.retrain import RetrainConfig, retrain  # noqa: E402
from training.trainer import train  # noqa: E402

SIZE = (192, 240)  # frame h, w: small frames keep the whole loop to minutes on 2 cores
TRAINED = ("crack", "scratch")  # thin dark and bright lines: what the first model learns
HELD_OUT = "stain"  # never in the champion's data; small ones (a new coolant) pass as surface shading
HELD_OUT_SEVERITY = (0.15, 0.35)  # small stains: the first model lets about 80% of them pass


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def combine(out: Path, *parts: Dataset) -> None:
    """One golden dataset folder from several synthesised ones (their file names never collide)."""
    samples = []
    for ds in parts:
        for s in ds.samples:
            (out / s.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ds.abspath(s), out / s.path)
            samples.append(replace(s, mask=""))
        shutil.rmtree(ds.root)
    classes = tuple(dict.fromkeys(c for ds in parts for c in ds.info.classes))
    Dataset(out, DatasetInfo(classes, ("good",)), samples).save()


def escape_rate(client: httpx.Client, images: list[bytes]) -> tuple[float, str]:
    """Share of defective images the served model lets pass (review counts as caught: a person decides)."""
    verdicts = [client.post("/v1/inspect", content=img, headers={"Content-Type": "image/jpeg"}).json()
                for img in images]
    passed = sum(v["verdict"] == "pass" for v in verdicts)
    return passed / len(images), verdicts[0]["model"]["version"]


def run_loop(work: Path, *, n_base: int = 400, n_golden: int = 150, n_new: int = 80, epochs: int = 15,
             retrain_epochs: int = 10, load_s: float = 6.0, threads: int | None = None,
             seed: int = 0) -> dict[str, Any]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    say(f"synthesising data: base (good, {', '.join(TRAINED)}), golden (all types), {HELD_OUT} pool")
    base = synthesize(work / "data", n=n_base, recipe="steel", seed=seed, size=SIZE, defects=TRAINED,
                      severity=(0.6, 1.0), workers=1)
    known = synthesize(work / "golden-known", n=n_golden, recipe="steel", seed=seed + 1, size=SIZE,
                       defect_fraction=0.5, defects=TRAINED, severity=(0.6, 1.0), splits=(0.0, 0.0, 1.0), workers=1)
    new = synthesize(work / "golden-new", n=n_golden // 4, recipe="steel", seed=seed + 3, size=SIZE,
                     defect_fraction=1.0, defects=(HELD_OUT,), severity=HELD_OUT_SEVERITY, splits=(0.0, 0.0, 1.0),
                     workers=1)
    combine(work / "golden", known, new)
    pool = synthesize(work / "pool", n=n_new, recipe="steel", seed=seed + 2, size=SIZE, defect_fraction=1.0,
                      defects=(HELD_OUT,), severity=HELD_OUT_SEVERITY, workers=1)
    golden = Dataset.load(work / "golden")
    held_out = [golden.abspath(s).read_bytes() for s in golden.samples if s.label == HELD_OUT]

    say(f"training the champion on {len(base.split('train'))} images (no {HELD_OUT})")
    fast = {"long_side": 96, "lr": 2e-3, "target_recall": 0.9, "threads": threads}
    champ = train(TrainConfig(data=str(work / "data"), out=str(work / "champion"), name="steel-strip",
                              epochs=epochs, min_epochs=5,
                              patience=6, **fast), progress=False)
    reg = ModelRegistry(work / "registry")
    v1 = reg.add(champ.bundle_path, line="strip-1", status="promoted", note=f"first model, no {HELD_OUT} in its data")
    say(f"registered champion {v1}")

    station_key, engineer_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    settings = load_settings(registry=work / "registry", line="strip-1", samples_dir=work / "samples", port=0,
                             verdict_db=work / "verdicts.sqlite", station_keys=station_key,
                             engineer_keys=engineer_key, threads=threads, max_queue=64)
    out: dict[str, Any] = {"champion": v1}
    with start_in_background(settings) as srv, \
            httpx.Client(base_url=srv.url, headers={"X-API-Key": engineer_key}, timeout=60) as eng:
        before, served = escape_rate(eng, held_out)
        out["escape_before"] = before
        say(f"served {served}: {HELD_OUT} escape rate {before:.0%} on {len(held_out)} golden {HELD_OUT} images")

        say(f"posting {n_new} {HELD_OUT} samples to POST /v1/samples as a new defect class")
        for s in pool.samples:
            r = eng.post("/v1/samples", files={"file": (Path(s.path).name, pool.abspath(s).read_bytes(), "image/jpeg")},
                         data={"label": HELD_OUT, "new_class": "true", "station": "qa-bench",
                               "note": "escapes found at final inspection"})
            r.raise_for_status()

        say("retraining: fine-tune from the champion, compare on the golden set")
        res = retrain(RetrainConfig(
            registry=str(work / "registry"), line="strip-1", data=str(work / "data"), samples=str(work / "samples"),
            golden=str(work / "golden"), golden_split="test", out=str(work / "retrain-1"),
            train={"epochs": retrain_epochs, "min_epochs": 3, "lr": 1e-3, "target_recall": 0.9, "threads": threads},
            rules=PromotionRules(max_false_reject_increase=0.05, min_new_class_recall=0.8)), progress=False)
        out.update(challenger=res.challenger_version, status=res.status, reason=res.decision.reason,
                   report=str(res.report_html))
        say(f"challenger {res.challenger_version}: {res.status} ({res.decision.reason})")
        say(f"report: {res.report_html}")

        if res.status == "promoted":
            images = [base.abspath(s).read_bytes() for s in base.split("test")]
            with StationLoad(srv.url, station_key, images, stations=16) as load:
                time.sleep(load_s / 2)
                reload = eng.post("/v1/model/reload").json()
                time.sleep(load_s / 2)
            lat = sorted(a.latency_ms for a in load.answers)
            out.update(load_requests=len(load.answers), load_failed=len(load.failed),
                       reload_ms=reload["total_ms"], p50_ms=statistics.median(lat),
                       p99_ms=lat[int(0.99 * (len(lat) - 1))],
                       versions={v: sum(a.version == v for a in load.answers) for v in (v1, res.challenger_version)})
            say(f"reloaded to {reload['model']['version']} in {reload['total_ms']:.0f} ms under 16-station load: "
                f"{len(load.answers)} requests, {len(load.failed)} failed")
            after, served = escape_rate(eng, held_out)
            out["escape_after"] = after
            say(f"served {served}: {HELD_OUT} escape rate {after:.0%} (was {before:.0%})")

            back = reg.rollback("strip-1", reason="example: rollback drill")
            eng.post("/v1/model/reload").raise_for_status()
            rolled, served = escape_rate(eng, held_out)
            out.update(rolled_back_to=back, served_after_rollback=served, escape_after_rollback=rolled)
            say(f"rolled back: serving {served} again ({HELD_OUT} escape rate {rolled:.0%})")
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "retrain-loop")
    p.add_argument("--quick", action="store_true", help="Smaller data and fewer epochs (what the slow test runs).")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    kw = {"n_base": 300, "n_golden": 120, "n_new": 60, "epochs": 12, "retrain_epochs": 8} if a.quick else {}
    out = run_loop(a.work, threads=a.threads, **kw)
    print(json.dumps(out, indent=2))
    ok = out.get("status") == "promoted" and out.get("load_failed") == 0 and out["escape_after"] < out["escape_before"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    main()
