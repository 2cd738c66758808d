"""Several instances on the plant network: PostgreSQL, Mosquitto, nginx (deploy/nginx/defectscope.conf)
and two service instances, 16 stations through the balancer, a model promotion in the middle
(tests/plant_network.py; benchmarks/plant_network.py runs it for 60 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plant_network import run_plant, splitting_bundle
from tests.plant_services import mosquitto_binary, nginx_binary, postgres_bin
from tests.serving.conftest import jpeg


@pytest.mark.slow
def test_two_instances_behind_nginx_lose_nothing_and_alarm_as_one(tmp_path: Path) -> None:
    for need in (nginx_binary, mosquitto_binary, lambda: postgres_bin("postgres")):
        need()  # skipped (or failed under CI) with the install command
    images = [jpeg(i) for i in range(60)]
    bundle = splitting_bundle(tmp_path / "model", images)
    f = run_plant(tmp_path / "plant", bundle, images, stations=16, duration_s=12, fault_stations=4, fault=(60, 120),
                  spc_baseline=50, spc_window=10)
    print("\n".join(f.lines()))
    assert f.requests > 500 and f.failed == 0, f.statuses
    assert f.in_database == f.answered == f.on_mqtt == f.requests  # every answered verdict, counted
    assert all(n > 0.2 * f.answered for n in f.per_instance), f.per_instance  # both instances answered
    assert len(set(f.served_after)) == 1 and all(f.versions.values()), f.versions  # the promotion rolled across
    assert f.served_after[0] == list(f.versions)[1]
    # the fault stations alarmed, and exactly as one monitor seeing every part in order would have
    assert {a[0] for a in f.alarms_logged if a[3] == "raised"} >= {f"station-{i:02d}" for i in range(4)}
    assert f.alarms_logged == f.alarms_single and f.alarms_on_mqtt == len(f.alarms_logged)
