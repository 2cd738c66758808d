"""Liveness (open, for load balancers), readiness and Prometheus metrics (any valid key: they name the
stations, their verdict counts and the model version; a scraper sends its key as a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.deps import ServiceDep, StationRole
from serving.schemas import Health, ModelRef

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive (no key needed)")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}},
            summary="A model is loaded and warmed up, and the verdict log keeps up")
async def readyz(service: ServiceDep, _: StationRole) -> Response:
    ready, why = service.health()
    if not ready:
        return JSONResponse(Health(status="not_ready", detail=why).model_dump(), status_code=503)
    card = service.predictor.card  # type: ignore[union-attr]  # health() says one is loaded
    return JSONResponse(Health(status="ok", model=ModelRef(name=card.name, version=card.version)).model_dump())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep, _: StationRole) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
