"""End to end: ``defectscope serve`` as a real uvicorn process on a free local port, fed by ``defectscope station``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serving.server import free_port
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg

CLI = [sys.executable, "-c", "from defectscope.cli import main; main()"]


@pytest.mark.slow
def test_serve_and_station_processes(bundle_path: Path, tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "verdicts.sqlite"
    env = {**os.environ, "DEFECTSCOPE_STATION_KEYS": STATION_KEY, "DEFECTSCOPE_ENGINEER_KEYS": ENGINEER_KEY,
           "DEFECTSCOPE_STOP_AFTER_S": "120"}  # a safety net: the server ends even if this test dies
    server = subprocess.Popen([*CLI, "serve", "--model", str(bundle_path), "--host", "127.0.0.1", "--port",
                               str(port), "--verdict-db", str(db)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", headers={"X-API-Key": STATION_KEY}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        r = httpx.post(f"{url}/v1/inspect", content=jpeg(4), timeout=10,
                       headers={"Content-Type": "image/jpeg", "X-API-Key": STATION_KEY})
        assert r.status_code == 200 and r.json()["verdict"] in ("pass", "fail", "review")
        assert httpx.post(f"{url}/v1/inspect", content=jpeg(4), timeout=10,
                          headers={"Content-Type": "image/jpeg"}).status_code == 401
        station = subprocess.run(
            [*CLI, "station", "--source", "sim", "--api", url, "--rate", "0", "--count", "4", "--station-id", "sim-1",
             "--unsent", str(tmp_path / "unsent.jsonl")],
            env={**env, "DEFECTSCOPE_API_KEY": STATION_KEY}, capture_output=True, text=True, timeout=120)
        assert station.returncode == 0, station.stdout + station.stderr
        assert "4 parts" in station.stdout and "latency p50" in station.stdout
        assert station.stdout.count("sim-1-0000") == 4  # a live line per part
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # open: for load balancers
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 401
        metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {STATION_KEY}"}, timeout=5).text
        assert 'station="sim-1"' in metrics
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert STATION_KEY not in out and ENGINEER_KEY not in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 5
        assert conn.execute("SELECT COUNT(*) FROM verdicts WHERE station = 'sim-1'").fetchone()[0] == 4
