"""The top process drivers per station for the QA page: computed in the background, cached, bounded.

A process analysis (``analysis.analyze``) fits models on thousands of parts, so it never runs on a
request: a request gets the last result at once and, when that is older than ``every_s``,
starts one refresh (never two at a time) that analyses the most active stations' newest parts.
The refresh runs in a child process at the lowest CPU priority, limited to one core: in the
service's own process its Python loops held the GIL, and a station's p50 latency rose from 10.7 to
24.4 ms while it ran (demo model, 2 cores). The child reads the verdict log itself (SQLite WAL:
readers never block the writer). It only runs while someone looks at the page.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from serving.verdict_store import VerdictQueries

log = logging.getLogger("defectscope.serving")
MAX_STATIONS = 8
PARTS_PER_STATION = 5000
DB_ENV = "DEFECTSCOPE_DRIVERS_DATABASE"
CHILD_TIMEOUT_S = 900  # eight stations of 5,000 parts take about 4 min on one idle core


class DriverCache:
    def __init__(self, queries: VerdictQueries, every_s: float) -> None:
        self.queries = queries
        self.every_s = every_s
        self._results: list[dict[str, Any]] = []
        self._updated: float | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            stale = self._updated is None or time.time() - self._updated > self.every_s
            if stale and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._refresh, name="defectscope-process-drivers",
                                                daemon=True)
                self._thread.start()
            computing = self._thread is not None and self._thread.is_alive()
            return {"stations": list(self._results), "updated": self._updated, "computing": computing,
                    "every_s": self.every_s, "error": self.error}

    def _refresh(self) -> None:
        try:
            results = self._in_child(self.queries.stations(MAX_STATIONS))
            self.error = None
        except Exception as exc:  # a refresh must never take the service down; the page shows why
            log.exception("process driver analysis failed: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"
            results = self._results
        with self._lock:
            self._results, self._updated = results, time.time()

    def _in_child(self, stations: list[str]) -> list[dict[str, Any]]:
        """``python -m serving.process_drivers STATION...``: a fresh interpreter (nothing of the
        service's state, no import of its main module), its JSON answer on stdout. The database
        goes by the environment, so a server's password never shows in the process list."""
        if not stations:
            return []
        cmd = [sys.executable, "-m", "serving.process_drivers", *stations]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                              cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, DB_ENV: self.queries.db.locator()})
        if done.returncode:
            raise RuntimeError(f"the analysis process failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return json.loads(done.stdout)



def background_priority() -> None:
    try:  # Linux: run only when no inspection thread wants the CPU
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def station_drivers(db: str, station: str) -> dict[str, Any]:
    """One station's drivers (in the child process)."""
    from analysis import PartRecord, analyze

    rows = VerdictQueries(db).for_analysis(stations=[station], limit=PARTS_PER_STATION)
    res = analyze([PartRecord.from_row(r) for r in rows], repeats=3, network=False, per_class=False)
    return {"station": station, "status": res.status, "message": res.message, "parts": res.parts,
            "fails": res.fails, "cv_auc": res.model.get("cv_auc"),
            "drivers": [d.to_dict() for d in res.top_drivers[:3]],
            "window": res.window.to_dict() if res.window else None}


if __name__ == "__main__":  # the child: python -m serving.process_drivers STATION...
    background_priority()
    print(json.dumps([station_drivers(os.environ[DB_ENV], s) for s in sys.argv[1:]]))
