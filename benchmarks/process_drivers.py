"""Which settings make defects, checked against the simulator's hidden function.

    .venv/bin/python benchmarks/process_drivers.py                         # 5,000 parts, seed 0
    .venv/bin/python benchmarks/process_drivers.py --seeds 10              # the spread over lines
    .venv/bin/python benchmarks/process_drivers.py --service --model models/demo   # end to end

A simulated line whose belt speed, temperature and tool wear drive scratches, stains and pits
(``datasets.simulator.process``; humidity, the tool in use and the shift drive nothing, motor
current follows belt speed) makes ``--parts`` parts. Their verdicts go into a real verdict log:
by default the simulator's truth (a perfect classifier; no rendering, seconds), with
``--service`` the verdicts of a real uvicorn service with ``--model``, fed by a station that
sends each part's process parameters as X-Process (the path a plant runs). ``analysis.analyze``
then reads the log as ``defectscope analyze`` does and never sees the hidden function.

Printed per line: the driver ranking (pass: the three true drivers rank above every other
parameter) and the suggested window's true fail rate (the simulator's function, with the window's
settings spread evenly over it and the other parameters as they ran) against the best achievable
inside the observed range (the background defect rate: every driver has a flat region inside
its range). Pass: within 10 % (relative) of the best.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import inspection  # noqa: F401  (first: OpenCV's pixel limit is set before cv2 loads)
from analysis import PartRecord, analyze
from datasets.simulator import GOOD, LineSimulator
from datasets.simulator.process import ProcessDrivers
from serving.verdict_store import VerdictQueries, VerdictRecord, store_rows

TRUE = ("belt_speed", "temperature", "tool_wear")


def log_truth(db: Path, line: LineSimulator, n: int) -> None:
    rows = []
    for i in range(n):
        label = line.decide(i)[0]
        rows.append(VerdictRecord(ts=line.timestamp(i), request_id=uuid.uuid4().hex, station="sim", part_id=str(i),
                                  image_sha256="0" * 64, verdict="pass" if label == GOOD else "fail", label=label,
                                  confidence=1.0, defect_score=0.0 if label == GOOD else 1.0, scores={},
                                  model_name="truth", model_version="truth", latency_ms=0.0, batch_size=1,
                                  process=line.process_params(i)).row())
    store_rows(db, rows)


def log_service(db: Path, model: Path, seed: int, n: int, background: float, size: tuple[int, int]) -> None:
    from datasets.simulator.camera import SimulatedCamera
    from inspection.predictor import Predictor
    from serving.config import load_settings
    from serving.server import start_in_background
    from serving.station import StationConfig, run_station

    settings = load_settings(port=0, verdict_db=db, auth_disabled=True)
    with start_in_background(settings, Predictor.from_path(model)) as server:
        cfg = StationConfig(api=server.url, station_id="sim", count=n, unsent_path=None)
        cam = SimulatedCamera(seed=seed, n=n, size=size, defect_rate=background, process=ProcessDrivers(seed=seed))
        with cam:
            s = run_station(cam, cfg)
    print(f"  service: {s.parts} parts, {dict(s.counts)}, agrees with the truth on {s.truth_agree}/{s.truth_checked}")


def true_rate(line: LineSimulator, records: list[PartRecord], ranges: dict[str, tuple[float, float]]) -> float:
    rng = np.random.default_rng(1)
    params = {k: np.array([r.process[k] for r in records], float) for k in TRUE}
    for k, (a, b) in ranges.items():
        if k in params:
            params[k] = rng.uniform(a, b, len(records))
    return float(line.fail_probability(params).mean())


def one(seed: int, args: argparse.Namespace) -> dict:
    line = LineSimulator(defect_rate=args.background, process=ProcessDrivers(seed=seed), seed=seed, start_time=0.0,
                         rate=args.rate)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "verdicts.sqlite"
        t0 = time.perf_counter()
        if args.service:
            log_service(db, args.model, seed, args.parts, args.background, tuple(args.size))
        else:
            log_truth(db, line, args.parts)
        rows = VerdictQueries(db).for_analysis()
    logged = time.perf_counter() - t0
    records = [PartRecord.from_row(r) for r in rows]
    res = analyze(records, network=not args.no_network)
    names = [d.name for d in res.drivers]
    ranked = set(names[:3]) == set(TRUE)
    w = res.window
    truth = true_rate(line, records, w.ranges) if w else float("nan")
    best = args.background
    ratio = truth / best
    print(f"seed {seed}: {res.status}; {res.parts} parts, {res.fails} failed; {res.model.get('kind')} CV ROC AUC "
          f"{res.model.get('cv_auc')} (candidates {res.model.get('candidates')}); analysis {res.seconds:.1f} s "
          f"(logging {logged:.1f} s)")
    print("  ranking: " + ", ".join(f"{d.name} {d.importance:.4f} [{d.low:.4f}, {d.high:.4f}]"
                                    f"{' *' if d.is_driver else ''}" for d in res.drivers))
    if w:
        print("  window: " + ", ".join(f"{k} {a:.4g}-{b:.4g}" for k, (a, b) in w.ranges.items()) +
              f"; predicted {100 * w.predicted:.1f} % (folds {100 * w.spread[0]:.1f}-{100 * w.spread[1]:.1f} %), "
              f"observed {w.fails}/{w.parts} inside")
    print(f"  true fail rate: as run {100 * true_rate(line, records, {}):.2f} %, in the window {100 * truth:.2f} %, "
          f"best achievable {100 * best:.2f} %: ratio {ratio:.3f} -> "
          f"{'PASS' if ranked and ratio <= 1.1 else 'FAIL'} (drivers ranked first: {ranked})")
    return {"seed": seed, "ranked": ranked, "ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="Lines to run: seed, seed+1, ...")
    ap.add_argument("--background", type=float, default=0.02, help="Defect rate no setting removes.")
    ap.add_argument("--rate", type=float, default=0.1, help="Parts per second (sets the shifts the parts fall in).")
    ap.add_argument("--no-network", action="store_true", help="Gradient boosting only.")
    ap.add_argument("--service", action="store_true", help="Verdicts from a real service with --model.")
    ap.add_argument("--model", type=Path, default=Path("models/demo"))
    ap.add_argument("--size", type=int, nargs=2, default=(1024, 1280), metavar=("H", "W"))
    args = ap.parse_args()
    out = [one(s, args) for s in range(args.seed, args.seed + args.seeds)]
    ok = sum(o["ranked"] and o["ratio"] <= 1.1 for o in out)
    print(f"\n{ok} of {len(out)} lines pass; window/best ratio median {np.median([o['ratio'] for o in out]):.3f}, "
          f"worst {max(o['ratio'] for o in out):.3f}; drivers ranked first on {sum(o['ranked'] for o in out)}")


if __name__ == "__main__":
    main()
