"""This checkout's service against another one (the previous commit), same model, same run.

    git worktree add /tmp/prev HEAD~1
    .venv/bin/python benchmarks/service_compare.py --other /tmp/prev [--rounds 4] [--seconds 5]

Both services run at once (the idle one costs nothing); rounds alternate between them: one station
posting back to back (p50), then 16 stations (throughput), each round on each side. A busy
moment on a shared machine then hits both alike. Default model: a random-init defectnet at 160 px
(the default architecture), a simulated 1280x1024 JPEG per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from service_latency import CLI, ROOT, Load, build_bundle, start, stop, test_image

from serving.server import free_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--other", type=Path, required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="defectscope-compare-"))
    model = args.model or build_bundle("defectnet", 160, tmp)
    kwargs = {"content": test_image(), "headers": {"Content-Type": "image/jpeg"}}
    sides = {}
    for name, code in (("this checkout", ROOT), ("other", args.other.resolve())):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(code)}
        proc = start([*CLI, "serve", "--model", str(model), "--port", str(port), "--no-auth", "--verdict-db",
                      str(tmp / f"{port}.sqlite"), "--max-queue", "64"], url, "/readyz", env=env, cwd=code)
        sides[name] = (proc, url + "/v1/inspect", {"p50": [], "rps": []})
    try:
        for _, url, _ in sides.values():
            Load(url, kwargs, 1).run(60, count=20)  # warm-up
        for _ in range(args.rounds):
            for _, url, fig in sides.values():
                one = Load(url, kwargs, 1)
                one.run(args.seconds)
                fig["p50"].append(one.pct(50))
                many = Load(url, kwargs, 16)
                elapsed = many.run(args.seconds)
                fig["rps"].append(many.codes[200] / elapsed)
    finally:
        for proc, _, _ in sides.values():
            stop(proc)
    print(f"{args.rounds} alternating rounds of {args.seconds:g} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{'service':<16}{'p50 1 station ms':>18}{'16 stations req/s':>20}")
    for name, (_, _, fig) in sides.items():
        print(f"{name:<16}{statistics.median(fig['p50']):>18.1f}{statistics.median(fig['rps']):>20.1f}")
    a, b = (statistics.median(s[2]["rps"]) for s in sides.values())
    print(f"throughput at 16 stations, this / other: {a / b:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
