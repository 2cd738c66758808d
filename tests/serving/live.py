"""``defectscope serve`` as a real uvicorn process on a free port, for tests that need the real thing
(timeouts, signals, memory, disk faults): started, waited for, stopped, its output kept."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.server import free_port
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY

CLI = [sys.executable, "-c", "from defectscope.cli import main; main()"]
ST = {"X-API-Key": STATION_KEY}
ENG = {"X-API-Key": ENGINEER_KEY}


@dataclass
class Live:
    url: str
    port: int
    process: subprocess.Popen
    db: Path
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc")

    def rows(self, sql: str = "SELECT request_id FROM verdicts") -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> tuple[int, str]:
        """Signal the server, wait for it; (exit code, everything it printed)."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        self._reader.join(10)
        return self.process.returncode, "".join(self.output)

    def drain(self) -> None:
        """Read the server's output as it comes: a full pipe would block its logging, and the server."""
        self._reader = threading.Thread(target=lambda: self.output.extend(iter(self.process.stdout.readline, "")),
                                        daemon=True)
        self._reader.start()


def wait_ready(url: str, process: subprocess.Popen, live: Live, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            live._reader.join(5)
            raise AssertionError(f"the server exited: {''.join(live.output)}")
        try:
            if httpx.get(f"{url}/readyz", headers=ST, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the service did not become ready")
        time.sleep(0.2)


@contextmanager
def serve(bundle: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
          db: Path | None = None) -> Iterator[Live]:
    port = free_port()
    db = db or tmp_path / "verdicts.sqlite"
    full_env = {**os.environ, "DEFECTSCOPE_STATION_KEYS": STATION_KEY, "DEFECTSCOPE_ENGINEER_KEYS": ENGINEER_KEY,
                "DEFECTSCOPE_STOP_AFTER_S": "600", **(env or {})}  # a safety net if the test dies
    process = subprocess.Popen([*CLI, "serve", "--model", str(bundle), "--host", "127.0.0.1", "--port", str(port),
                                "--verdict-db", str(db), *args], env=full_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    live = Live(f"http://127.0.0.1:{port}", port, process, db)
    live.drain()
    try:
        wait_ready(live.url, process, live)
        yield live
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
