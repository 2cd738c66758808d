"""The top process drivers per station for the QA page: computed in the background, cached, bounded.

A process analysis (``analysis.analyze``) fits models on thousands of parts, so it never runs on a
request: a request gets the last result at once and, when that is older than ``every_s``,
starts one refresh on a single background thread (never two at a time) that analyses the most
active stations' newest parts. The thread limits scikit-learn to one core, so inspection keeps
the rest of the machine. It only runs while someone looks at the page.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from serving.verdict_store import VerdictQueries

log = logging.getLogger("defectscope.serving")
MAX_STATIONS = 8
PARTS_PER_STATION = 5000


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
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                results = [self._station(s) for s in self.queries.stations(MAX_STATIONS)]
            self.error = None
        except Exception as exc:  # a refresh must never take the service down; the page shows why
            log.exception("process driver analysis failed: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"
            results = self._results
        with self._lock:
            self._results, self._updated = results, time.time()

    def _station(self, station: str) -> dict[str, Any]:
        from analysis import PartRecord, analyze

        rows = self.queries.for_analysis(stations=[station], limit=PARTS_PER_STATION)
        res = analyze([PartRecord.from_row(r) for r in rows], repeats=3, network=False, per_class=False)
        return {"station": station, "status": res.status, "message": res.message, "parts": res.parts,
                "fails": res.fails, "cv_auc": res.model.get("cv_auc"),
                "drivers": [d.to_dict() for d in res.top_drivers[:3]],
                "window": res.window.to_dict() if res.window else None}
