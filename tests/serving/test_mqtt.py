"""Verdicts and alarms reach a real Mosquitto broker (QoS 1); an absent or slow broker never holds a verdict.

The tests start Debian's ``mosquitto`` on a free port. CI installs it (.ci/run), so there a missing
broker fails the test; on a workstation without it the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from serving.mqtt_out import ALARM_SCHEMA, VERDICT_SCHEMA, MqttConfigError, parse_url, topic_part
from serving.server import free_port
from tests.plant_services import broker
from tests.serving.conftest import jpeg, metric


class Subscriber:
    """A plain paho client that records what the MES would receive."""

    def __init__(self, port: int, topic: str = "defectscope/#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict]] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), self._ready.set())
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10)
        time.sleep(0.2)  # the SUBACK

    def wait(self, n: int, timeout: float = 20.0) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_urls_and_topics() -> None:
    assert parse_url("mqtt://broker") == ("broker", 1883, None, None, False)
    assert parse_url("mqtts://u:p%40ss@10.0.0.5:8884") == ("10.0.0.5", 8884, "u", "p@ss", True)
    with pytest.raises(MqttConfigError):
        parse_url("http://broker")
    assert topic_part("cell/3+#") == "cell_3__" and topic_part(None) == "unknown"


def test_every_verdict_and_alarm_reaches_the_broker(make_client, tmp_path, predictor) -> None:
    with broker(tmp_path) as port:
        sub = Subscriber(port)
        try:
            with make_client(mqtt_url=f"mqtt://127.0.0.1:{port}", line="line-a", spc_baseline=20,
                             spc_window=10) as client:
                ids = []
                for i in range(12):
                    r = client.post("/v1/inspect", content=jpeg(i), headers={
                        "Content-Type": "image/jpeg", "X-Station-Id": "cell/3", "X-Process": '{"speed": 1.2}'})
                    assert r.status_code == 200
                    ids.append(r.json()["request_id"])
                from tests.serving.test_alarms_api import _verdict

                mon = client.app.state.monitor
                for i in range(20):  # another station, whose baseline is all passes
                    mon.observe("cell/9", _verdict("pass"), predictor.card, float(i))
                for i in range(10):
                    mon.observe("cell/9", _verdict("fail"), predictor.card, 100.0 + i)
                got = sub.wait(13)
                text = client.get("/metrics").text
        finally:
            sub.close()
    verdicts = [p for t, p in got if t == "defectscope/v1/line-a/cell_3/verdict"]
    assert [p["request_id"] for p in verdicts] == ids  # every answered verdict, in order
    assert all(p["schema"] == VERDICT_SCHEMA and p["process"] == {"speed": 1.2} for p in verdicts)
    assert {"verdict", "label", "confidence", "defect_score", "model", "regions", "ts"} <= set(verdicts[0])
    [alarm] = [p for t, p in got if t == "defectscope/v1/line-a/cell_9/alarm"]
    assert alarm["schema"] == ALARM_SCHEMA and alarm["kind"] == "fail_rate" and alarm["state"] == "raised"
    assert metric(text, "defectscope_mqtt_acknowledged") >= 13 and metric(text, "defectscope_mqtt_connected") == 1.0


@pytest.mark.slow  # up to 10 s: paho's reconnect back-off
def test_no_broker_costs_no_verdict_and_the_outbox_is_delivered_when_it_comes(make_client, tmp_path) -> None:
    port = free_port()  # nothing listens yet
    with make_client(mqtt_url=f"mqtt://127.0.0.1:{port}", mqtt_outbox=10) as client:
        t0 = time.perf_counter()
        for i in range(15):
            r = client.post("/v1/inspect", content=jpeg(i), headers={"Content-Type": "image/jpeg",
                                                                      "X-Station-Id": "s1"})
            assert r.status_code == 200
        assert time.perf_counter() - t0 < 10  # answered at the service's own pace
        text = client.get("/metrics").text
        assert metric(text, "defectscope_mqtt_dropped_total", reason="outbox_full") == 5.0  # counted, not silent
        assert metric(text, "defectscope_mqtt_pending") == 10.0
        with broker(tmp_path, port):
            sub = Subscriber(port)
            try:
                got = sub.wait(10, timeout=30)  # paho reconnects by itself (1-10 s back-off)
            finally:
                sub.close()
            assert len(got) == 10
            text = client.get("/metrics").text
        assert metric(text, "defectscope_mqtt_pending") == 0.0
