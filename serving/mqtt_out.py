"""Verdicts and alarms to the MES over MQTT: QoS 1 through paho-mqtt, a bounded outbox, never in a verdict's way.

A request only appends a message to the outbox (a bounded deque: O(1), no lock held across I/O);
one sender thread hands messages to the client when it is connected, and paho's network thread
does the rest (PUBACK tracking, resending unacknowledged QoS 1 messages after a reconnect, with
the session kept across reconnects). A slow or absent broker therefore never delays a verdict.
Nothing is dropped silently: a message the full outbox cannot take, and any still waiting when the
service stops past its deadline, is counted (``defectscope_mqtt_dropped_total`` by reason) and
logged; delivered ones are counted when the broker acknowledges them.

Topics: ``{prefix}/{line}/{station}/verdict`` and ``.../alarm`` (station ids are made topic-safe:
no ``/``, ``+`` or ``#``). Payloads are JSON with a ``schema`` field (``defectscope.verdict/1``,
``defectscope.alarm/1``), documented in the README; a change that breaks a reader gets a new number.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

from inspection.errors import DefectscopeError

log = logging.getLogger("defectscope.serving")
VERDICT_SCHEMA = "defectscope.verdict/1"
ALARM_SCHEMA = "defectscope.alarm/1"
_TOPIC_UNSAFE = re.compile(r"[/+#\x00-\x1f]")


class MqttConfigError(DefectscopeError):
    """An MQTT URL the service cannot use."""


def topic_part(text: str | None) -> str:
    return _TOPIC_UNSAFE.sub("_", text or "unknown")[:64] or "unknown"


def parse_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """(host, port, username, password, tls) from ``mqtt://user:pass@host:1883`` or ``mqtts://...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise MqttConfigError(f"MQTT URL {url!r}: write mqtt://HOST[:PORT] or mqtts://USER:PASS@HOST[:PORT]")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise MqttConfigError(f"MQTT URL {url!r} has a bad port") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, user, password, tls


class MqttOutbox:
    def __init__(self, url: str, *, prefix: str = "defectscope/v1", line: str = "default", max_outbox: int = 10_000,
                 metrics: Any = None) -> None:
        import paho.mqtt.client as mqtt

        self.host, self.port, user, password, tls = parse_url(url)
        self.prefix, self.line = prefix.rstrip("/"), topic_part(line)
        self.max_outbox = max_outbox
        self.metrics = metrics
        self._outbox: deque[tuple[str, dict[str, Any]]] = deque()  # encoded by the sender, not the request
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._unacked = 0  # handed to the client, not yet acknowledged by the broker
        self._lock = threading.Lock()
        self.counts = {"published": 0, "acknowledged": 0, "dropped_full": 0, "dropped_shutdown": 0}
        # paho resends unacknowledged QoS 1 messages after a reconnect, clean session or not
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user:
            self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)  # unbounded in paho: the outbox above is the bound
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._thread: threading.Thread | None = None

    # -- the request side ------------------------------------------------------------------------
    def verdict(self, payload: dict[str, Any]) -> None:
        self._put(f"{self.prefix}/{self.line}/{topic_part(payload.get('station'))}/verdict",
                  {"schema": VERDICT_SCHEMA, **payload})

    def alarm(self, payload: dict[str, Any]) -> None:
        self._put(f"{self.prefix}/{self.line}/{topic_part(payload.get('station'))}/alarm",
                  {"schema": ALARM_SCHEMA, **payload})

    def _put(self, topic: str, payload: dict[str, Any]) -> None:
        if len(self._outbox) + self._unacked >= self.max_outbox:
            self.counts["dropped_full"] += 1
            self._count_drop("outbox_full")
            if self.counts["dropped_full"] in (1, 10, 100) or self.counts["dropped_full"] % 1000 == 0:
                log.error("MQTT outbox full (%d messages; broker %s:%d %s): %d messages dropped so far",
                          self.max_outbox, self.host, self.port,
                          "connected" if self._connected.is_set() else "unreachable", self.counts["dropped_full"])
            return
        self._outbox.append((topic, payload))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._outbox) + self._unacked

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._send, name="defectscope-mqtt", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``; count the rest as dropped at shutdown."""
        deadline = time.monotonic() + timeout
        while self.pending and self.connected and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)
        left = self.pending
        if left:
            self.counts["dropped_shutdown"] += left
            self._count_drop("shutdown", left)
            log.error("%d MQTT messages were not delivered to %s:%d before shutdown", left, self.host, self.port)
        self.client.disconnect()
        self.client.loop_stop()

    # -- the sender thread and paho's callbacks --------------------------------------------------
    def _send(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while self._outbox and self._connected.is_set() and not self._stop.is_set():
                topic, payload = self._outbox.popleft()
                with self._lock:
                    self._unacked += 1
                info = self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1)
                if info.rc != 0:  # not taken (disconnected in between): back to the front of the line
                    with self._lock:
                        self._unacked -= 1
                    self._outbox.appendleft((topic, payload))
                    break
                self.counts["published"] += 1

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        log.info("connected to the MQTT broker %s:%d", self.host, self.port)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            log.warning("lost the MQTT broker %s:%d (%s); verdicts wait in the outbox", self.host, self.port, reason)
        self._connected.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self._unacked = max(0, self._unacked - 1)
        self.counts["acknowledged"] += 1

    def _count_drop(self, reason: str, n: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.mqtt_dropped.labels(reason=reason).inc(n)
