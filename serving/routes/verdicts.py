"""GET /v1/verdicts: query the verdict log (engineer key)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from serving.deps import EngineerRole, ServiceDep
from serving.errors import ApiError
from serving.schemas import VerdictRow, VerdictsResponse

router = APIRouter(prefix="/v1", tags=["verdicts"])


@router.get("/verdicts", response_model=VerdictsResponse, summary="Logged verdicts, newest first")
async def verdicts(
    service: ServiceDep, _: EngineerRole,
    since: Annotated[float | None, Query(description="Unix time, inclusive.")] = None,
    until: Annotated[float | None, Query(description="Unix time, exclusive.")] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Literal["pass", "fail", "review"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VerdictsResponse:
    vlog = service.verdict_log
    if vlog is None:
        raise ApiError(404, "no_verdict_log", "the verdict log is switched off (DEFECTSCOPE_VERDICT_DB is empty)")
    rows = await asyncio.get_running_loop().run_in_executor(
        None, lambda: vlog.query(since=since, until=until, station=station, verdict=verdict,
                                 limit=limit, offset=offset))
    return VerdictsResponse(verdicts=[VerdictRow(**r) for r in rows], count=len(rows))
