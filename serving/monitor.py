"""Line monitoring in the service: every verdict feeds its station's SPC monitor
(``monitoring.spc.StationMonitor``, one per station and model version); alarm episodes go to
the alarm log (SQLite, webhook), the Prometheus metrics and the service log.

``observe`` runs on the event loop after each verdict: a few microseconds of arithmetic, with
anything slow (disk, network) handed to the alarm log's thread. A new model version starts a
fresh monitor with its own baseline: a model with other thresholds has another fail rate.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
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
        self.alarm_log = AlarmLog(alarm_db_path(settings), webhook=settings.alarm_webhook,
                                  timeout_s=settings.alarm_webhook_timeout_s,
                                  on_webhook_failure=metrics.webhook_failures.inc if metrics else None)
        self._monitors: OrderedDict[tuple[str, str], StationMonitor] = OrderedDict()
        self._active: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._refs: dict[str, ScoreReference | None] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.alarm_log.start()

    def close(self) -> None:
        self.alarm_log.close()

    # -- the verdict hook ----------------------------------------------------------------------
    def observe(self, station: str | None, verdict: Verdict, card: ModelCard, ts: float,
                process: dict[str, Any] | None = None) -> list[AlarmEvent]:
        key = (station or UNKNOWN_STATION, card.version)
        with self._lock:
            mon = self._monitors.get(key)
            if mon is None:  # station ids are admitted and capped before a verdict exists (serving.stations)
                mon = self._monitors[key] = StationMonitor(self.cfg, reference=self._reference(card))
                self._retire_old_versions(key[0], ts)
            else:
                self._monitors.move_to_end(key)
            events = mon.observe(verdict.outcome.value, verdict.defect_score, ts, process)
            for ev in events:
                self._publish(key, ev)
        return events

    def _reference(self, card: ModelCard) -> ScoreReference | None:
        if card.version not in self._refs:
            try:
                self._refs[card.version] = ScoreReference.from_dict(card.metrics.get("val_scores"))
            except (KeyError, TypeError, ValueError):
                log.warning("model %s: unreadable val_scores in its card; no score-drift check", card.version)
                self._refs[card.version] = None
        return self._refs[card.version]

    def _publish(self, key: tuple[str, str], ev: AlarmEvent) -> None:
        station, version = key
        record = {"station": station, "model_version": version, "kind": ev.kind, "state": ev.state, "ts": ev.ts,
                  "value": ev.value, "threshold": ev.limit, "part": ev.part, "message": ev.message,
                  "moved": list(ev.moved)}
        if ev.state == "raised":
            self._active[(station, version, ev.kind)] = record
            log.warning("ALARM %s at station %s (model %s): %s", ev.kind, station, version, ev.message)
        else:
            self._active.pop((station, version, ev.kind), None)
            log.warning("alarm cleared: %s at station %s (model %s): %s", ev.kind, station, version, ev.message)
        if self.metrics is not None:
            label = self.metrics.station_label(station)
            self.metrics.alarm_events.labels(station=label, kind=ev.kind, state=ev.state).inc()
            self.metrics.alarms_active.labels(station=label, kind=ev.kind).set(1 if ev.state == "raised" else 0)
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
        with self._lock:
            return sorted((dict(r) for r in self._active.values()), key=lambda r: -r["ts"])

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.alarm_log.recent(limit)

    def charts(self, station: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [{"station": s, "model_version": v, **m.snapshot()}
                    for (s, v), m in reversed(self._monitors.items()) if station is None or s == station]

    @property
    def settings_summary(self) -> dict[str, Any]:
        c = self.cfg
        return {"baseline": c.baseline, "window": c.window, "false_alarms_per_10k": c.false_alarms_per_10k,
                "cusum_shift": c.cusum_shift, "cusum_h": round(c.cusum_h, 3), "drift_raise": c.drift_raise,
                "drift_clear": c.drift_clear, "drift_window": c.drift_window}
