"""Line monitoring in the service: every verdict feeds its station's SPC monitor
(``monitoring.spc.StationMonitor``, one per station and model version); alarm episodes go to
the alarm log (database, webhook), the Prometheus metrics and the service log.

``observe`` runs on the event loop after each verdict: a few microseconds of arithmetic, with
anything slow (disk, network) handed to the alarm log's thread. A new model version starts a
fresh monitor with its own baseline: a model with other thresholds has another fail rate.

A chart new to this process (a restart, or a station that another instance served until now)
is rebuilt from the verdict log on a background thread before it takes new parts, so with a
shared PostgreSQL log a station's chart is the same whichever instance answers it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from inspection.card import ModelCard
from inspection.types import Verdict
from monitoring.spc import AlarmEvent, ScoreReference, SpcConfig, StationMonitor
from serving.alarm_log import AlarmLog
from serving.config import Settings
from serving.metrics import ServiceMetrics
from serving.mqtt_out import MqttOutbox

log = logging.getLogger("defectscope.serving")
VERSIONS_KEPT = 2  # monitors per station: the model serving now and the one before (charts across a reload)
UNKNOWN_STATION = "unknown"
SEED_PARTS = 20_000  # the most of a station's logged history a new chart replays (about 0.1 s)


def alarm_db_path(settings: Settings) -> Path | None:
    if settings.alarm_db is not None:
        return settings.alarm_db
    return settings.verdict_db.parent / "defectscope-alarms.sqlite" if settings.verdict_db is not None else None


class LineMonitor:
    def __init__(self, settings: Settings, metrics: ServiceMetrics | None = None,
                 mqtt: MqttOutbox | None = None) -> None:
        self.mqtt = mqtt
        self.cfg = SpcConfig(baseline=max(settings.spc_baseline, settings.spc_window), window=settings.spc_window,
                             false_alarms_per_10k=settings.spc_false_alarms_per_10k)
        self.metrics = metrics
        # the shared server when one is set (alarms across instances), else the SQLite file
        self.alarm_log = AlarmLog(settings.database(alarm_db_path(settings)), webhook=settings.alarm_webhook,
                                  timeout_s=settings.alarm_webhook_timeout_s,
                                  on_webhook_failure=metrics.webhook_failures.inc if metrics else None)
        self._monitors: OrderedDict[tuple[str, str], StationMonitor] = OrderedDict()
        self._active: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._refs: dict[str, ScoreReference | None] = {}
        self._lock = threading.Lock()
        # (station, model version, before, limit) -> logged parts, oldest first: set by the app once the
        # verdict log is open, so a new chart goes on from the station's history
        self.history: Callable[[str, str, float, int], list[dict[str, Any]]] | None = None
        self._seeding: dict[tuple[str, str], list[tuple[Any, ...]]] = {}  # parts held while a chart is rebuilt
        self._seeds: dict[tuple[str, str], Future[None]] = {}
        self._seeder = ThreadPoolExecutor(1, thread_name_prefix="defectscope-spc-history")

    def start(self) -> None:
        self.alarm_log.start()

    def close(self) -> None:
        self._seeder.shutdown(wait=True)
        self.alarm_log.close()

    # -- the verdict hook ----------------------------------------------------------------------
    def observe(self, station: str | None, verdict: Verdict, card: ModelCard, ts: float,
                process: dict[str, Any] | None = None) -> list[AlarmEvent]:
        """Events this part raised or cleared (none while its new chart is being rebuilt from the log:
        they come when the rebuild has caught up)."""
        key = (station or UNKNOWN_STATION, card.version)
        part = (verdict.outcome.value, verdict.defect_score, ts, process)
        with self._lock:
            mon = self._monitors.get(key)
            if mon is None:  # station ids are admitted and capped before a verdict exists (serving.stations)
                mon = self._monitors[key] = StationMonitor(self.cfg, reference=self._reference(card))
                self._retire_old_versions(key[0], ts)
                if self.history is not None:
                    self._seeding[key] = [part]
                    self._seeds[key] = self._seeder.submit(self._seed, key, mon, ts)
                    return []
            else:
                self._monitors.move_to_end(key)
            if key in self._seeding:
                self._seeding[key].append(part)
                return []
            return self._observe(key, mon, part)

    def _observe(self, key: tuple[str, str], mon: StationMonitor, part: tuple[Any, ...]) -> list[AlarmEvent]:
        events = mon.observe(*part)
        for ev in events:
            self._publish(key, ev)
        return events

    def _seed(self, key: tuple[str, str], mon: StationMonitor, before: float) -> None:
        """A new chart replays the station's logged parts of this model version, whichever instance
        (or an earlier run of this one) judged them, then the parts that arrived meanwhile. An alarm
        active in that history is active here too; it was announced when raised, so not again."""
        assert self.history is not None
        try:
            rows = self.history(key[0], key[1], before, SEED_PARTS)
        except Exception as exc:  # an unreachable log costs the history, never a verdict
            log.warning("station %s: its chart starts afresh, the verdict log's history is unreadable: %s",
                        key[0], exc)
            rows = []
        for r in rows:  # outside the lock: nothing else touches this chart until it leaves _seeding
            for ev in mon.observe(r["verdict"], float(r["defect_score"]), float(r["ts"]), r["process"]):
                self._remember(key, ev)
        with self._lock:
            for part in self._seeding.pop(key, []):
                self._observe(key, mon, part)
            self._seeds.pop(key, None)
        if rows:
            log.info("station %s (model %s): chart rebuilt from %d logged parts", key[0], key[1], len(rows))

    def _caught_up(self, timeout_s: float = 2.0) -> None:
        """Let charts being rebuilt finish (briefly) before a query reads them."""
        with self._lock:
            pending = list(self._seeds.values())
        if pending:
            wait(pending, timeout=timeout_s)

    def _reference(self, card: ModelCard) -> ScoreReference | None:
        if card.version not in self._refs:
            try:
                self._refs[card.version] = ScoreReference.from_dict(card.metrics.get("val_scores"))
            except (KeyError, TypeError, ValueError):
                log.warning("model %s: unreadable val_scores in its card; no score-drift check", card.version)
                self._refs[card.version] = None
        return self._refs[card.version]

    def _remember(self, key: tuple[str, str], ev: AlarmEvent) -> dict[str, Any]:
        """The alarm's state here (active list, gauge); announcing it is ``_publish``'s."""
        station, version = key
        record = {"station": station, "model_version": version, "kind": ev.kind, "state": ev.state, "ts": ev.ts,
                  "value": ev.value, "threshold": ev.limit, "part": ev.part, "message": ev.message,
                  "moved": list(ev.moved)}
        if ev.state == "raised":
            self._active[(station, version, ev.kind)] = record
        else:
            self._active.pop((station, version, ev.kind), None)
        if self.metrics is not None:
            label = self.metrics.station_label(station)
            self.metrics.alarms_active.labels(station=label, kind=ev.kind).set(1 if ev.state == "raised" else 0)
        return record

    def _publish(self, key: tuple[str, str], ev: AlarmEvent) -> None:
        station, version = key
        record = self._remember(key, ev)
        if ev.state == "raised":
            log.warning("ALARM %s at station %s (model %s): %s", ev.kind, station, version, ev.message)
        else:
            log.warning("alarm cleared: %s at station %s (model %s): %s", ev.kind, station, version, ev.message)
        if self.metrics is not None:
            self.metrics.alarm_events.labels(station=self.metrics.station_label(station), kind=ev.kind,
                                             state=ev.state).inc()
        self.alarm_log.submit(record)
        if self.mqtt is not None:
            self.mqtt.alarm(record)

    def _retire_old_versions(self, station: str, ts: float) -> None:
        """Keep this station's newest VERSIONS_KEPT monitors; an active alarm of a retired one is
        cleared with an event that says why, never dropped silently."""
        mine = [k for k in self._monitors if k[0] == station]  # oldest first (insertion order)
        for key in mine[:-VERSIONS_KEPT]:
            mon = self._monitors.pop(key)
            for kind in [k[2] for k in self._active if k[:2] == key]:
                self._publish(key, AlarmEvent(kind=kind, state="cleared", ts=ts, value=0.0, limit=0.0,
                                              part=mon.invalid.parts, message="cleared: this model version no longer "
                                              "serves the station, so its chart ended"))

    # -- queries (the routes) ------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        self._caught_up()
        with self._lock:
            return sorted((dict(r) for r in self._active.values()), key=lambda r: -r["ts"])

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.alarm_log.recent(limit)

    def charts(self, station: str | None = None) -> list[dict[str, Any]]:
        self._caught_up()
        with self._lock:
            return [{"station": s, "model_version": v, **m.snapshot()}
                    for (s, v), m in reversed(self._monitors.items()) if station is None or s == station]

    @property
    def settings_summary(self) -> dict[str, Any]:
        c = self.cfg
        return {"baseline": c.baseline, "window": c.window, "false_alarms_per_10k": c.false_alarms_per_10k,
                "cusum_shift": c.cusum_shift, "cusum_h": round(c.cusum_h, 3), "drift_raise": c.drift_raise,
                "drift_clear": c.drift_clear, "drift_window": c.drift_window}
