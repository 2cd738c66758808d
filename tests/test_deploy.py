"""deploy/: the files a plant copies stay true to the code (nginx's own check runs in
tests/serving/test_plant_network.py, which serves through deploy/nginx/defectscope.conf)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_the_image_copies_every_package_the_project_installs() -> None:
    find = re.search(r"\[tool\.setuptools\.packages\.find\]\s*include = \[([^\]]*)\]",
                     (ROOT / "pyproject.toml").read_text())
    assert find is not None
    packages = {p.strip().strip('"').rstrip("*") for p in find.group(1).split(",")}
    copied = set(re.findall(r"^COPY (\w+) \1$", (DEPLOY / "Dockerfile").read_text(), re.M))
    assert copied == packages


def test_compose_mounts_files_that_exist_and_runs_two_instances_with_their_own_spill_folders() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    instances = [s for name, s in services.items() if name.startswith("defectscope-")]
    assert len(instances) == 2
    assert len({s["environment"]["DEFECTSCOPE_VERDICT_SPILL_DIR"] for s in instances}) == 2
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./") and src != "./plant":
                assert (DEPLOY / src).is_file(), src
    # the ports nginx balances are the ones the instances listen on, in systemd and in compose
    conf = (DEPLOY / "nginx" / "defectscope.conf").read_text()
    upstream = set(re.findall(r"server 127\.0\.0\.1:(\d+)", conf))
    assert upstream == {s["command"][s["command"].index("--port") + 1] for s in instances}


def test_the_example_settings_are_settings_the_service_knows() -> None:
    from serving.config import Settings

    known = {f"DEFECTSCOPE_{name.upper()}" for name in Settings.model_fields}
    env = (DEPLOY / "systemd" / "defectscope.env.example").read_text()
    names = set(re.findall(r"^(DEFECTSCOPE_\w+)=", env, re.M))
    assert names and names <= known, names - known
    unit = (DEPLOY / "systemd" / "defectscope@.service").read_text()
    assert set(re.findall(r"Environment=(DEFECTSCOPE_\w+)=", unit)) <= known
