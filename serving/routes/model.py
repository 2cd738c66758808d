"""GET /v1/model: the card of the loaded bundle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.deps import InspectorDep, StationRole

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", summary="The loaded model's card (classes, thresholds, preprocessing, metrics)")
async def model_card(inspector: InspectorDep, _: StationRole) -> dict[str, Any]:
    return {**inspector.card.to_dict(), "backend": inspector.backend.name}
