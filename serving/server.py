"""Run the service with uvicorn: in the foreground (``run_server``) or in a thread (``start_in_background``).

Both are library functions so the CLI, the demo, tests and benchmarks start the service the
same way. ``settings.stop_after_s`` ends a run by itself (CI and timed demos).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from inspection.errors import DefectscopeError
from inspection.predictor import Predictor
from serving import http_protocol
from serving.app import create_app
from serving.config import Settings, load_settings

log = logging.getLogger("defectscope.serving")
_WORKER_SETTINGS_ENV = "DEFECTSCOPE__WORKER_SETTINGS"  # how a multi-worker parent hands settings on


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    """What uvicorn enforces for us: header deadline, connection cap, header size, graceful stop."""
    return {
        "host": settings.host, "port": settings.port,
        "access_log": False,  # one line per part at line rate is noise; metrics count every request
        "http": http_protocol.configure(settings.header_timeout_s, settings.http_parser),
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": 16 * 1024,  # request line plus headers; past it 400
        "timeout_keep_alive": 5,
        # in-flight requests get half the stop deadline; the verdict log's flush has the rest
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_timeout_s / 2)),
    }


def _uvicorn_config(app: object, settings: Settings, **kw: object) -> uvicorn.Config:
    return uvicorn.Config(app, log_level="info", **_uvicorn_options(settings), **kw)  # type: ignore[arg-type]


def _stop_later(server: uvicorn.Server, seconds: float) -> threading.Timer:
    def stop() -> None:
        log.info("stopping after %.0f s (DEFECTSCOPE_STOP_AFTER_S)", seconds)
        server.should_exit = True

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    return timer


def run_server(settings: Settings, predictor: Predictor | None = None) -> None:
    """Serve until Ctrl-C / SIGTERM or ``settings.stop_after_s``; in-flight requests finish first."""
    if settings.workers > 1:
        if predictor is not None:
            raise DefectscopeError("several workers load their own model: pass settings.model, not a predictor")
        # Each worker process rebuilds the settings from this variable (secrets included, as they came).
        raw = json.loads(settings.model_dump_json(exclude={"station_keys", "engineer_keys", "database_url"}))
        raw["station_keys"] = [k.get_secret_value() for k in settings.station_keys]
        raw["engineer_keys"] = [k.get_secret_value() for k in settings.engineer_keys]
        if settings.database_url is not None:
            raw["database_url"] = settings.database_url.get_secret_value()
        os.environ[_WORKER_SETTINGS_ENV] = json.dumps(raw)
        if settings.stop_after_s:  # the supervisor stops its workers on SIGINT, as on Ctrl-C
            threading.Timer(settings.stop_after_s, os.kill, (os.getpid(), signal.SIGINT)).start()
        uvicorn.run("serving.server:worker_app", factory=True, workers=settings.workers,
                    **_uvicorn_options(settings))  # type: ignore[arg-type]
        return
    server = uvicorn.Server(_uvicorn_config(create_app(settings, predictor), settings))
    if settings.stop_after_s:
        _stop_later(server, settings.stop_after_s)
    server.run()


def worker_app():  # called by uvicorn in each worker process
    raw = json.loads(os.environ[_WORKER_SETTINGS_ENV])
    settings = load_settings(**raw)
    http_protocol.configure(settings.header_timeout_s, settings.http_parser)  # this worker process's class
    return create_app(settings)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class BackgroundServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_background(settings: Settings, predictor: Predictor | None = None,
                        ready_timeout: float = 120.0) -> BackgroundServer:
    """Start uvicorn in a thread of this process (port 0 picks a free one); returns once it is ready."""
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port(settings.host)})
    server = uvicorn.Server(_uvicorn_config(create_app(settings, predictor), settings))
    thread = threading.Thread(target=server.run, name="defectscope-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive():
            raise DefectscopeError("the service failed to start: see the log above")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise DefectscopeError(f"the service did not start within {ready_timeout:.0f} s")
        time.sleep(0.05)
    if settings.stop_after_s:
        _stop_later(server, settings.stop_after_s)
    return BackgroundServer(f"http://{settings.host}:{settings.port}", server, thread)
