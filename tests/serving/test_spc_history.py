"""A station's SPC chart goes on from the verdict log when the process that keeps it is new: a
restarted instance, or (with the shared PostgreSQL log) another instance taking the station over."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.predictor import Predictor
from tests.plant_network import split_by_verdict, splitting_bundle
from tests.serving.conftest import jpeg

SPC = {"spc_baseline": 20, "spc_window": 10}


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Predictor, list[bytes], list[bytes]]:
    images = [jpeg(i) for i in range(40)]
    bundle = splitting_bundle(tmp_path_factory.mktemp("split"), images)
    passes, fails = split_by_verdict(bundle, images)
    return Predictor.from_path(bundle, threads=1), passes, fails


def _post(client, images: list[bytes], n: int) -> None:
    for i in range(n):
        r = client.post("/v1/inspect", content=images[i % len(images)],
                        headers={"Content-Type": "image/jpeg", "X-Station-Id": "s1"})
        assert r.status_code == 200


def test_a_restarted_instance_goes_on_with_the_station_chart(make_client, split, log_db) -> None:
    predictor, passes, fails = split
    with make_client(predictor, **SPC, **log_db.settings()) as first:
        _post(first, passes, 20)  # the baseline: 20 good parts
        assert first.get("/v1/monitor").json()["stations"][0]["parts"] == 20
    with make_client(predictor, **SPC, **log_db.settings()) as second:  # a new process, the same log
        _post(second, fails, 10)  # one window of failures: an alarm only if the baseline carried over
        (chart,) = second.get("/v1/monitor").json()["stations"]
        assert chart["parts"] == 30
        (alarm,) = second.get("/v1/alarms").json()["active"]
        assert (alarm["station"], alarm["kind"], alarm["part"]) == ("s1", "fail_rate", 30)


def test_an_unreadable_history_starts_the_chart_afresh_and_loses_no_verdict(make_client, split, tmp_path: Path):
    predictor, passes, _ = split
    with make_client(predictor, **SPC) as client:
        def broken(*_a):
            raise OSError("the log's disk is gone")

        client.app.state.monitor.history = broken
        _post(client, passes, 5)
        assert client.get("/v1/monitor").json()["stations"][0]["parts"] == 5
        client.app.state.service.verdict_log.flush()
        assert len(client.get("/v1/verdicts").json()["verdicts"]) == 5
