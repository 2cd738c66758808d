"""``create_app(settings, predictor=None)``: the FastAPI application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspection import __version__
from inspection.predictor import Predictor
from serving.auth import KeyRing
from serving.config import Settings
from serving.errors import install_error_handlers
from serving.guard import Guard
from serving.metrics import ServiceMetrics
from serving.monitor import LineMonitor
from serving.mqtt_out import MqttOutbox
from serving.routes import alarms, health, inspect, model, samples, ui, verdicts
from serving.schemas import COMMON_ERRORS
from serving.service import InspectionService

log = logging.getLogger("defectscope.serving")
_ROUTES = frozenset({"/v1/inspect", "/v1/inspect/batch", "/v1/model", "/v1/verdicts", "/healthz", "/readyz",
                     "/metrics", "/v1/samples", "/v1/model/reload", "/v1/alarms", "/v1/monitor", "/ui",
                     "/v1/review/upload"})


class RequestMetrics:
    """Counts requests by route and status and times them; a plain ASGI middleware (cheap per request)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in _ROUTES else "other"  # bounded label values
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.request_seconds.labels(route=route).observe(time.perf_counter() - t0)


def create_app(settings: Settings, predictor: Predictor | None = None) -> FastAPI:
    """The service for ``settings``; ``predictor`` given (tests, embedding) skips loading ``settings.model``."""
    metrics = ServiceMetrics(settings.max_batch_size)
    service = InspectionService(settings, metrics, predictor)
    if settings.mqtt_url:
        service.mqtt = MqttOutbox(settings.mqtt_url, prefix=settings.mqtt_topic_prefix, line=settings.line,
                                  max_outbox=settings.mqtt_outbox, metrics=metrics)
        metrics.watch_mqtt(service.mqtt)
    monitor = LineMonitor(settings, metrics, service.mqtt)
    service.listeners.append(monitor.observe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auth_disabled:
            log.warning("AUTH IS DISABLED: anyone who can reach this port may use every endpoint. "
                        "Use this only for a local demo.")
        monitor.start()
        if service.mqtt is not None:
            service.mqtt.start()  # connects in the background: an absent broker never holds up the start
        await service.start()
        if service.verdict_log is not None:  # a station's chart goes on from the log (a restart, another instance)
            monitor.history = service.verdict_log.queries.station_history
        try:
            yield
        finally:
            await service.stop()
            monitor.close()

    app = FastAPI(
        title="defectscope inspection service",
        version=__version__,
        summary="Pass / fail verdicts for inline camera stations.",
        lifespan=lifespan,
        responses=COMMON_ERRORS,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = metrics
    app.state.keys = KeyRing(settings)
    app.state.monitor = monitor
    install_error_handlers(app)
    for r in (inspect.router, model.router, verdicts.router, samples.router, alarms.router, ui.router, health.router):
        app.include_router(r)
    # the last added runs first: count every request, then the guard, before any route reads a byte
    app.add_middleware(Guard, settings=settings, keys=app.state.keys, metrics=metrics)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
