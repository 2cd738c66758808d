"""A plant on one machine: PostgreSQL, Mosquitto, nginx (deploy/nginx/defectscope.conf) and several
service instances sharing the log and the model registry, with stations posting through the
balancer and a model promotion in the middle. Used by tests/serving/test_plant_network.py (short)
and benchmarks/plant_network.py (16 stations, 60 s).

What it checks, after the run: no failed request; every answered verdict in PostgreSQL and
received on MQTT; the alarms the instances logged equal those of one monitor fed the same parts
in the same order (what a single instance would have raised).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np

from inspection.bundle import load_bundle
from inspection.predictor import Predictor
from inspection.types import Outcome
from registry import ModelRegistry
from serving.config import load_settings
from serving.loadgen import StationLoad
from serving.monitor import LineMonitor
from serving.server import free_port
from serving.sql import database
from tests.plant_services import broker, fresh_database, nginx, postgres, wait_port

ROOT = Path(__file__).resolve().parents[1]
STATION_KEY = "plant-station-key-0123456789abcdef"
ENGINEER_KEY = "plant-engineer-key-0123456789abcdef"


@dataclass
class PlantFigures:
    instances: int
    stations: int
    duration_s: float
    requests: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    answered: int = 0
    in_database: int = 0
    on_mqtt: int = 0
    alarms_logged: list[tuple] = field(default_factory=list)
    alarms_single: list[tuple] = field(default_factory=list)
    alarms_on_mqtt: int = 0
    versions: dict[str, int] = field(default_factory=dict)  # verdicts per model version
    served_after: list[str] = field(default_factory=list)  # what each instance serves at the end
    promoted_at_s: float = 0.0
    restarted_at_s: float | None = None  # when one instance was restarted under load (restart_one)
    per_instance: list[int] = field(default_factory=list)  # verdicts each instance logged
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    bytes_per_verdict: float = 0.0  # PostgreSQL's verdicts table with its indexes, per row

    @property
    def throughput(self) -> float:
        return self.answered / self.duration_s

    def lines(self) -> list[str]:
        return [
            f"{self.instances} instances behind nginx, {self.stations} stations, {self.duration_s:.0f} s, "
            f"promotion at {self.promoted_at_s:.1f} s"
            + (f", instance 1 restarted at {self.restarted_at_s:.1f} s" if self.restarted_at_s else ""),
            f"requests {self.requests:,}  failed {self.failed}  {self.throughput:.0f} verdicts/s  "
            f"p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms",
            f"answered {self.answered:,}  in PostgreSQL {self.in_database:,} ({self.bytes_per_verdict:.0f} bytes each "
            f"with indexes)  received on MQTT {self.on_mqtt:,}",
            f"per instance {self.per_instance}  per model version {self.versions}  "
            f"serving at the end {self.served_after}",
            f"alarms logged {len(self.alarms_logged)}  single-monitor replay {len(self.alarms_single)}  "
            f"identical {self.alarms_logged == self.alarms_single}  alarm messages on MQTT {self.alarms_on_mqtt}",
        ]


def second_version(bundle: Path, folder: Path) -> Path:
    """The same model as a new registry version (weights moved by 1e-7): its verdicts match, its id differs."""
    import torch

    from training.export import save_bundle

    b = load_bundle(bundle)
    model = b.build_torch_model()
    with torch.no_grad():
        p = next(model.parameters())
        p.add_(torch.full_like(p, 1e-7))
    card = replace(b.card, version="", parent_version=b.card.version)
    return save_bundle(folder, model, card).path


def splitting_bundle(folder: Path, images: Sequence[bytes]) -> Path:
    """An untrained ``defectnet`` whose fail threshold passes 70 % of ``images``: a model with both
    verdicts on test images, made in a second (a random network's scores barely differ, but do)."""
    import torch

    from inspection.card import ModelCard, Thresholds
    from inspection.models import create_model
    from inspection.preprocess import PreprocessConfig
    from training.export import save_bundle

    torch.manual_seed(0)
    model = create_model("defectnet", num_classes=3).eval()
    card = ModelCard(name="plant", version="", arch="defectnet", classes=("good", "scratch", "dent"),
                     pass_classes=("good",), preprocess=PreprocessConfig(input_size=(64, 80)))
    first = save_bundle(folder / "untuned", model, card, export=False)
    pred = Predictor.from_path(first.path, threads=1)
    scores = [pred.inspect(d).verdict.defect_score for d in images]  # type: ignore[union-attr]
    card = replace(card, thresholds=Thresholds(fail=float(np.quantile(scores, 0.7)), review=None))
    return save_bundle(folder / "bundle", model, card).path


def split_by_verdict(bundle: Path, images: Sequence[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The images this model passes and those it fails (a fault is then a run of failing parts)."""
    pred = Predictor.from_path(bundle, threads=1)
    passes, fails = [], []
    for data in images:
        item = pred.inspect(data)
        outcome = item.verdict.outcome if item.verdict is not None else None
        if outcome == Outcome.FAIL:
            fails.append(data)
        elif outcome == Outcome.PASS:
            passes.append(data)
    if not passes or not fails:
        raise RuntimeError(f"need images the model passes and fails: {len(passes)} pass, {len(fails)} fail")
    return passes, fails


def schedule(passes: int, fails: int, fault_stations: int, fault: tuple[int, int], rate: float = 0.03):
    """Station i's part n: a failing image with probability ``rate``, 0.6 inside the fault window of the
    first ``fault_stations`` stations. Reproducible: the same parts whatever instance answers."""
    def pick(i: int, n: int) -> int:
        r = random.Random(i * 1_000_003 + n)
        p = 0.6 if i < fault_stations and fault[0] <= n < fault[1] else rate
        return passes + r.randrange(fails) if r.random() < p else r.randrange(passes)
    return pick


class Instance:
    """``defectscope serve`` in a process of its own, as systemd would run it (deploy/systemd)."""

    def __init__(self, folder: Path, port: int, env: dict[str, str]) -> None:
        self.folder, self.port, self.env = folder, port, env
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> Instance:
        with open(self.folder / "service.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "defectscope", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.folder, env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)}, stdout=log,
                stderr=subprocess.STDOUT)
        wait_port(self.port, 120, self.proc)
        return self

    def stop(self) -> int | None:
        """A graceful stop (SIGTERM): in-flight requests finish, the verdict log is flushed."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def nginx_conf(folder: Path, port: int, upstreams: Sequence[int]) -> str:
    """deploy/nginx/defectscope.conf with this run's ports, inside a minimal nginx.conf."""
    site = (ROOT / "deploy" / "nginx" / "defectscope.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;\n" for p in upstreams)
    site = re.sub(r"(    server 127\.0\.0\.1:800\d [^\n]*\n)+", servers, site)
    site = site.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    (folder / "defectscope.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "".join(f"    {k}_temp_path {folder / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log off;\n{temps}    include {folder / 'defectscope.conf'};\n}}\n")


class MqttCounter:
    """What the MES receives: request ids of verdict messages and the alarm messages."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.verdicts: set[str] = set()
        self.alarms = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plant-mes")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("defectscope/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/verdict"):
                self.verdicts.add(body["request_id"])
            else:
                self.alarms += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _settled(ports: Sequence[int]) -> bool:
    """Every instance has written its verdicts and had the broker acknowledge its messages."""
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": ENGINEER_KEY}, timeout=5).text
        for name in ("defectscope_verdict_log_backlog", "defectscope_mqtt_pending"):
            values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
            if not values or values[0] > 0:
                return False
    return True


def single_monitor_alarms(db_url: str, registry: Path, baseline: int, window: int) -> list[tuple]:
    """The alarms one LineMonitor raises on the logged verdicts, station by station in logged order."""
    settings = load_settings(auth_disabled=True, verdict_db="", spc_baseline=baseline, spc_window=window)
    mon = LineMonitor(settings)
    reg = ModelRegistry(registry)
    cards: dict[str, Any] = {}
    out = []
    for r in database(db_url).select("SELECT station, verdict, defect_score, model_version, process "
                                     "FROM verdicts ORDER BY id"):
        card = cards.get(r["model_version"]) or cards.setdefault(r["model_version"], reg.load(r["model_version"]).card)
        v = SimpleNamespace(outcome=Outcome(r["verdict"]), defect_score=r["defect_score"])
        process = json.loads(r["process"]) if r["process"] else None
        for ev in mon.observe(r["station"], v, card, 0.0, process):  # type: ignore[arg-type]
            out.append((r["station"], r["model_version"], ev.kind, ev.state, ev.part))
    return sorted(out)


def logged_alarms(db_url: str) -> list[tuple]:
    rows = database(db_url).select("SELECT station, model_version, kind, state, part FROM alarms")
    return sorted((r["station"], r["model_version"], r["kind"], r["state"], r["part"]) for r in rows)


def run_plant(folder: Path, bundle: Path, images: Sequence[bytes], *, stations: int = 16, duration_s: float = 60.0,
              instances: int = 2, fault_stations: int = 4, fault: tuple[int, int] = (150, 300),
              spc_baseline: int = 100, spc_window: int = 20, durable: bool = False,
              threads: int = 1, restart_one: bool = False) -> PlantFigures:
    folder.mkdir(parents=True, exist_ok=True)
    reg_root = folder / "registry"
    reg = ModelRegistry(reg_root)
    v1 = reg.add(bundle, status="promoted")
    v2 = reg.add(second_version(bundle, folder / "v2"))
    passes, fails = split_by_verdict(bundle, images)
    figures = PlantFigures(instances, stations, duration_s)
    with ExitStack() as stack:
        pg_url = fresh_database(stack.enter_context(postgres(durable=durable)), "defectscope")
        mqtt_port = stack.enter_context(broker(folder))
        mes = MqttCounter(mqtt_port)
        stack.callback(mes.close)
        ports = [free_port() for _ in range(instances)]
        env = {"DEFECTSCOPE_DATABASE_URL": pg_url, "DEFECTSCOPE_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
               "DEFECTSCOPE_REGISTRY": str(reg_root), "DEFECTSCOPE_REGISTRY_WATCH_S": "0.5",
               "DEFECTSCOPE_STATION_KEYS": STATION_KEY, "DEFECTSCOPE_ENGINEER_KEYS": ENGINEER_KEY,
               "DEFECTSCOPE_THREADS": str(threads), "DEFECTSCOPE_DECODE_THREADS": "1",
               "DEFECTSCOPE_SPC_BASELINE": str(spc_baseline), "DEFECTSCOPE_SPC_WINDOW": str(spc_window),
               "DEFECTSCOPE_SAMPLES_DIR": str(folder / "samples")}
        procs = [Instance(folder / f"instance-{p}", p, env) for p in ports]
        for proc in procs:
            stack.callback(proc.stop)
            proc.start()
        lb = free_port()
        (folder / "nginx").mkdir(exist_ok=True)
        stack.enter_context(nginx(nginx_conf(folder / "nginx", lb, ports), folder / "nginx", lb))
        load = StationLoad(f"http://127.0.0.1:{lb}", STATION_KEY, [*passes, *fails], stations=stations,
                           pick=schedule(len(passes), len(fails), fault_stations, fault))
        t0 = time.monotonic()
        with load:
            time.sleep(duration_s / 2)
            figures.promoted_at_s = time.monotonic() - t0
            reg.promote(v2, reason="plant benchmark: a promotion under load")
            if restart_one:  # a software upgrade: one instance stopped and started again under load
                time.sleep(duration_s / 4)
                figures.restarted_at_s = time.monotonic() - t0
                procs[0].stop()
                procs[0].start()
            time.sleep(max(0.0, duration_s - (time.monotonic() - t0)))
        figures.duration_s = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while not _settled(ports) and time.monotonic() < deadline:
            time.sleep(0.2)
        figures.served_after = [httpx.get(f"http://127.0.0.1:{p}/v1/model", headers={"X-API-Key": ENGINEER_KEY},
                                          timeout=5).json()["version"] for p in ports]
        time.sleep(1.0)  # the last acknowledgements' messages reach the subscriber
        for proc in procs:
            assert proc.alive, "an instance died during the run"
        answers = load.answers
        figures.requests = len(answers)
        figures.failed = len(load.failed)
        figures.statuses = {s: sum(1 for a in answers if a.status == s) for s in {a.status for a in answers}}
        answered = set(load.answered)
        figures.answered = len(answered)
        lat = sorted(a.latency_ms for a in answers if a.status == 200)
        figures.p50_ms, figures.p99_ms = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
        rows = database(pg_url).select("SELECT request_id, model_version, station FROM verdicts")
        logged = {r["request_id"] for r in rows}
        figures.in_database = len(answered & logged)
        size = database(pg_url).select("SELECT pg_total_relation_size('verdicts') AS b")[0]["b"]
        figures.bytes_per_verdict = size / max(1, len(rows))
        figures.on_mqtt = len(answered & mes.verdicts)
        figures.alarms_on_mqtt = mes.alarms
        figures.versions = {v: sum(1 for r in rows if r["model_version"] == v) for v in (v1, v2)}
        figures.per_instance = _per_instance(ports)
        figures.alarms_logged = logged_alarms(pg_url)
        figures.alarms_single = single_monitor_alarms(pg_url, reg_root, spc_baseline, spc_window)
    return figures


def _per_instance(ports: Sequence[int]) -> list[int]:
    """Verdicts each instance answered (its /metrics): the balancer's split."""
    out = []
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": ENGINEER_KEY}, timeout=5).text
        out.append(int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("defectscope_verdicts_total{"))))
    return out
