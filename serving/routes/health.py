"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers run without one)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.deps import ServiceDep
from serving.schemas import Health, ModelRef

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}},
            summary="A model is loaded and warmed up")
async def readyz(service: ServiceDep) -> Response:
    if not service.ready or service.inspector is None:
        body = Health(status="not_ready", detail="no model loaded yet")
        return JSONResponse(body.model_dump(), status_code=503)
    card = service.inspector.card
    return JSONResponse(Health(status="ok", model=ModelRef(name=card.name, version=card.version)).model_dump())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
