"""SPC alarms on the simulated line: detection delay after a tool fault, false alarms without one.

    .venv/bin/python benchmarks/spc_detection.py                  # ground-truth outcome streams
    .venv/bin/python benchmarks/spc_detection.py --seeds 200 --clean-parts 50000

Each seed is one line (``LineSimulator("flange", seed=...)``, 5 % background defects). The
station monitor (``monitoring.spc.StationMonitor``, the one the service runs) learns its limits
from the first ``--baseline`` parts, then a ``ToolFault`` starts at a seed-dependent part after
the baseline. Delay = parts from the fault's first part to the fail-rate alarm. False alarms =
alarm episodes per 10,000 parts after the baseline on lines with no fault.

The verdicts here are the simulator's ground truth (a perfect classifier: a part fails when it
carries a defect), decided without rendering, so thousands of lines run in seconds. A real
model adds its own false rejects and escapes to both rates; ``tests/serving/test_monitor.py``
runs a trained model's verdicts through the same monitor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.simulator import GOOD, LineSimulator, ToolFault
from monitoring.spc import SpcConfig, StationMonitor


def outcomes(sim: LineSimulator, n: int):
    for i in range(n):
        label = sim.decide(i)[0]
        yield i, "pass" if label == GOOD else "fail"


def delay(seed: int, cfg: SpcConfig, rate: float, defect_rate: float, max_after: int) -> int | str | None:
    """Parts from the fault to the alarm; "active" when a false alarm was still on at the fault."""
    start = cfg.baseline + 200 + (seed * 37) % 500  # the fault lands anywhere within a window
    sim = LineSimulator("flange", seed=seed, defect_rate=defect_rate, events=[ToolFault(start, rate=rate)])
    mon = StationMonitor(cfg)
    for i, outcome in outcomes(sim, start + max_after):
        if i == start and mon.fail.active:
            return "active"
        for ev in mon.observe(outcome, None, float(i)):
            if ev.kind == "fail_rate" and ev.state == "raised" and i >= start:
                return i - start + 1
    return None


def false_alarms(seed: int, cfg: SpcConfig, parts: int, defect_rate: float) -> int:
    sim = LineSimulator("flange", seed=10_000 + seed, defect_rate=defect_rate)
    mon = StationMonitor(cfg)
    return sum(ev.state == "raised" for i, o in outcomes(sim, cfg.baseline + parts)
               for ev in mon.observe(o, None, float(i)))


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return float(s[min(len(s) - 1, round(q * (len(s) - 1)))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--clean-parts", type=int, default=20_000, help="fault-free parts per seed after the baseline")
    ap.add_argument("--defect-rate", type=float, default=0.05)
    ap.add_argument("--rates", default="0.5,0.2,0.1,0.05", help="tool-fault rates to measure")
    ap.add_argument("--baseline", type=int, default=SpcConfig.baseline)
    ap.add_argument("--window", type=int, default=SpcConfig.window)
    ap.add_argument("--false-alarms", type=float, default=SpcConfig.false_alarms_per_10k)
    args = ap.parse_args()
    cfg = SpcConfig(baseline=args.baseline, window=args.window, false_alarms_per_10k=args.false_alarms)
    print(f"command: python benchmarks/spc_detection.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"SPC: baseline {cfg.baseline} parts, window {cfg.window}, promised false alarms "
          f"{cfg.false_alarms_per_10k:g} per 10,000 parts, CUSUM {cfg.cusum_shift:g}x, h={cfg.cusum_h:.2f}; "
          f"background defect rate {args.defect_rate:.0%}; {args.seeds} seeds\n")
    t0 = time.perf_counter()
    print("| tool fault rate | fail rate in fault | detected | alarm already on | delay median (parts) | p90 | max |")
    print("|---|---|---|---|---|---|---|")
    for rate in (float(r) for r in args.rates.split(",")):
        got = [delay(s, cfg, rate, args.defect_rate, 5000) for s in range(args.seeds)]
        hit = [d for d in got if isinstance(d, int)]
        p = rate + (1 - rate) * args.defect_rate
        cells = (f"{statistics.median(hit):.0f} | {pct(hit, 0.9):.0f} | {max(hit)}" if hit else "- | - | -")
        print(f"| {rate:.2f} | {p:.1%} | {len(hit)}/{len(got)} within 5000 | {got.count('active')} | {cells} |")
    alarms = [false_alarms(s, cfg, args.clean_parts, args.defect_rate) for s in range(args.seeds)]
    total = args.seeds * args.clean_parts
    print(f"\nfault-free: {sum(alarms)} alarm episodes in {total:,} parts after the baseline = "
          f"{sum(alarms) / total * 10_000:.2f} per 10,000 parts (promised <= {cfg.false_alarms_per_10k:g}); "
          f"lines with any: {sum(a > 0 for a in alarms)}/{args.seeds}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
