"""Prometheus metrics on a per-app registry (two apps in one process, as in tests, never collide)."""

from __future__ import annotations

import re
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGES = ("decode", "preprocess", "queue", "inference", "decision", "total")
_STATION_RE = re.compile(r"[^A-Za-z0-9_.:-]")


class ServiceMetrics:
    def __init__(self, max_batch_size: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("defectscope_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.request_seconds = Histogram("defectscope_request_seconds", "HTTP request latency by route", ["route"],
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.stage_seconds = Histogram("defectscope_stage_seconds", "Pipeline stage latency per image", ["stage"],
                                       buckets=_LATENCY_BUCKETS, registry=r)
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, max_batch_size})
        self.batch_size = Histogram("defectscope_batch_size", "Images per inference micro-batch",
                                    buckets=[s for s in sizes if s <= max_batch_size], registry=r)
        self.queue_depth = Gauge("defectscope_queue_depth", "Images waiting for the inference worker", registry=r)
        self.in_flight = Gauge("defectscope_images_in_flight", "Images admitted and not yet answered", registry=r)
        self.verdicts = Counter("defectscope_verdicts", "Verdicts by outcome, label and station",
                                ["verdict", "label", "station"], registry=r)
        self.errors = Counter("defectscope_errors", "Errors by kind", ["kind"], registry=r)
        self.shed = Counter("defectscope_shed", "Requests refused with 503 because the queue was full", registry=r)
        self.log_backlog = Gauge("defectscope_verdict_log_backlog", "Verdicts not yet written to the database",
                                 registry=r)
        # line monitoring (serving/monitor.py)
        self.alarms_active = Gauge("defectscope_alarms_active", "1 while an SPC alarm episode is active",
                                   ["station", "kind"], registry=r)
        self.alarm_events = Counter("defectscope_alarm_events", "SPC alarm episodes raised and cleared",
                                    ["station", "kind", "state"], registry=r)
        self.mqtt_dropped = Counter("defectscope_mqtt_dropped", "MQTT messages not delivered, by reason "
                                    "(outbox_full: the broker was away too long; shutdown)", ["reason"], registry=r)
        self.webhook_failures = Counter("defectscope_alarm_webhook_failures", "Alarm webhook posts that failed",
                                        registry=r)
        self._lock = threading.Lock()

    @staticmethod
    def station_label(station: str | None) -> str:
        """A station id as a label value. Ids are admitted (and capped) by serving.stations before any
        verdict is counted, so the label values stay bounded without a cap of their own here."""
        return _STATION_RE.sub("_", station or "")[:64] or "unknown"

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage in STAGES:
            if stage in timings_ms:
                self.stage_seconds.labels(stage=stage).observe(timings_ms[stage] / 1000.0)

    def watch_mqtt(self, outbox: Any) -> None:
        """Export the MQTT outbox (serving.mqtt_out.MqttOutbox) at every scrape."""
        Gauge("defectscope_mqtt_pending", "MQTT messages waiting for the broker's acknowledgement",
              registry=self.registry).set_function(lambda: outbox.pending)
        Gauge("defectscope_mqtt_connected", "1 while connected to the MQTT broker",
              registry=self.registry).set_function(lambda: float(outbox.connected))
        Gauge("defectscope_mqtt_acknowledged", "MQTT messages the broker acknowledged since start",
              registry=self.registry).set_function(lambda: outbox.counts["acknowledged"])

    def watch_verdict_log(self, vlog: Any) -> None:
        """Export the verdict log's health (serving.verdict_log.VerdictLog) at every scrape."""
        self.log_backlog.set_function(lambda: vlog.backlog)
        self.registry.register(_VerdictLogCollector(vlog))


class _VerdictLogCollector:
    _STATES = ("ok", "behind", "failing", "dead")

    def __init__(self, vlog: Any) -> None:
        self.vlog = vlog

    def collect(self) -> Any:
        state, _ = self.vlog.status()
        g = GaugeMetricFamily("defectscope_verdict_log_state", "1 for the verdict log's current state "
                              "(ok, behind, failing: spilling to a file, dead: writer stopped)", labels=["state"])
        for st in self._STATES:
            g.add_metric([st], 1.0 if st == state else 0.0)
        yield g
        c = CounterMetricFamily("defectscope_verdict_log_records", "Verdict log records by what became of them",
                                labels=["outcome"])
        for outcome, n in self.vlog.counts.items():
            c.add_metric([outcome], float(n))
        yield c

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage in STAGES:
            if stage in timings_ms:
                self.stage_seconds.labels(stage=stage).observe(timings_ms[stage] / 1000.0)
