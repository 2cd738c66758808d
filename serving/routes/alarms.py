"""GET /v1/alarms (active and recent SPC alarms) and GET /v1/monitor (the control charts).

Any valid key may read them: a station may poll alarms to stop its line.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from serving.deps import StationRole
from serving.monitor import LineMonitor

router = APIRouter(prefix="/v1", tags=["monitoring"])


class Alarm(BaseModel):
    id: int | None = Field(None, description="Row id in the alarm log (recent events only).")
    station: str
    model_version: str
    kind: str = Field(description="fail_rate, invalid_rate or score_drift.")
    state: str = Field(description="raised or cleared.")
    ts: float
    value: float = Field(description="The statistic that crossed: a window's rate, the CUSUM, or the PSI.")
    threshold: float
    part: int = Field(description="Parts this station's monitor had seen when it happened.")
    message: str
    moved: list[dict[str, Any]] = Field(default_factory=list, description="Process parameters that moved with a "
                                        "raised alarm: numeric (before, now, shift_sd) or categorical (level, "
                                        "share_before, share_now); empty when the station sends none.")


class AlarmsResponse(BaseModel):
    active: list[Alarm] = Field(description="Alarm episodes raised and not yet cleared, newest first.")
    recent: list[Alarm] = Field(description="The latest raise and clear events, newest first.")


class MonitorResponse(BaseModel):
    settings: dict[str, Any]
    stations: list[dict[str, Any]] = Field(description="Per station and model version: counts, p-chart points "
                                           "with limits, CUSUM, score drift, active alarms.")


def _monitor(request: Request) -> LineMonitor:
    return request.app.state.monitor


@router.get("/alarms", response_model=AlarmsResponse, summary="Active and recent SPC alarms")
async def alarms(request: Request, _: StationRole,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AlarmsResponse:
    mon = _monitor(request)
    recent = await asyncio.get_running_loop().run_in_executor(None, mon.recent, limit)
    return AlarmsResponse(active=[Alarm(**a) for a in mon.active()], recent=[Alarm(**a) for a in recent])


@router.get("/monitor", response_model=MonitorResponse, summary="Control charts per station and model version")
async def monitor(request: Request, _: StationRole,
                  station: Annotated[str | None, Query(max_length=128)] = None) -> MonitorResponse:
    mon = _monitor(request)
    return MonitorResponse(settings=mon.settings_summary, stations=mon.charts(station))
