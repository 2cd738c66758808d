"""How long ``defectscope serve`` takes to be ready, and how much memory it holds then.

    .venv/bin/python benchmarks/service_startup.py [--model BUNDLE] [--runs 5] [--compare OTHER_CHECKOUT]

Starts the service ``--runs`` times on a free port (ONNX backend, auth off, a fresh verdict log)
and reports the median time from process start to a 200 from /readyz, and the resident memory
(VmRSS) at that moment. ``--compare DIR`` runs a second checkout of the project (for example the
previous commit: ``git worktree add /tmp/prev HEAD~1``) alternately with this one, same model,
same run, so the two figures are side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def start_once(code: Path, model: Path, work: Path) -> tuple[float, float]:
    from serving.server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from defectscope.cli import main; main()", "serve", "--model",
                             str(model), "--no-auth", "--port", str(port), "--verdict-db",
                             str(work / f"v{port}.sqlite")], cwd=code, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the service in {code} exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        ready = time.perf_counter() - t0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
    finally:
        proc.terminate()
        proc.wait(30)
    return ready, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="bundle (default: a random-init defectnet at 160 px)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compare", type=Path, help="another checkout to start alternately with this one")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="defectscope-startup-"))
    if args.model is None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from service_latency import build_bundle

        args.model = build_bundle("defectnet", 160, work)
    codes = [ROOT, *([args.compare.resolve()] if args.compare else [])]
    figures: dict[Path, list[tuple[float, float]]] = {c: [] for c in codes}
    for _ in range(args.runs):
        for code in codes:
            figures[code].append(start_once(code, args.model, work))
    print(f"model {args.model}; {args.runs} starts each, alternating; load average {os.getloadavg()[0]:.1f}")
    print(f"{'checkout':<40}{'ready s (median)':>18}{'RSS MiB at ready':>18}")
    for code, runs in figures.items():
        ready, rss = statistics.median(r for r, _ in runs), statistics.median(m for _, m in runs)
        print(f"{code!s:<40}{ready:>18.2f}{rss:>18.0f}")


if __name__ == "__main__":
    main()
