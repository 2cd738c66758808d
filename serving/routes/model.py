"""GET /v1/model: the card of the loaded bundle. POST /v1/model/reload: swap in a new model without downtime."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from serving.deps import EngineerRole, PredictorDep, ServiceDep, StationRole
from serving.errors import ApiError
from serving.reload import ReloadError, ReloadOutcome, ReloadRequest
from serving.schemas import ErrorResponse
from serving.upload import json_body, read_json

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", summary="The loaded model's card (classes, thresholds, preprocessing, metrics)")
async def model_card(predictor: PredictorDep, service: ServiceDep, _: StationRole) -> dict[str, Any]:
    card = predictor.card.to_dict()
    card["metrics"] = {k: v for k, v in card.get("metrics", {}).items() if k != "calibration_pool"}  # kB of scores
    # a model trained without real defects says so first: QA must know what it can miss
    return {**card, "good_only": predictor.card.good_only, "backend": predictor.backend.name,
            "threads": {"inference": getattr(predictor.backend, "threads", None),
                        "decode": service.decode_threads}}


@router.post("/model/reload", response_model=ReloadOutcome, summary="Load the registry champion (or a given "
             "version), vet it, and swap it in between batches; on any problem the current model keeps serving",
             openapi_extra=json_body(ReloadRequest, required=False),
             responses={code: {"model": ErrorResponse, "description": d} for code, d in {
                 401: "missing or invalid API key", 403: "needs an engineer key", 404: "unknown version",
                 409: "bundle corrupt or incompatible, rejected by the registry, no champion, or no registry",
                 422: "invalid body"}.items()})
async def reload_model(request: Request, service: ServiceDep, _: EngineerRole) -> ReloadOutcome:
    body = await read_json(request, ReloadRequest, optional=True)  # read only after the key was checked
    try:
        return await service.reload(body.version, force=body.force)
    except ReloadError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
