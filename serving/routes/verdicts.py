"""GET /v1/verdicts: query the verdict log; POST /v1/verdicts/{id}/label: a reviewed verdict's image
becomes a labelled sample; GET /v1/process/drivers: what drives each station's failures (engineer key)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from datasets.intake import SampleOrigin
from serving.deps import EngineerRole, ServiceDep
from serving.errors import ApiError
from serving.process_drivers import DriverCache
from serving.routes.samples import SAMPLE_ERRORS, LabelRequest, SampleOut, store_sample
from serving.schemas import VerdictRow, VerdictsResponse
from serving.upload import json_body, read_json
from serving.verdict_log import VerdictLog

router = APIRouter(prefix="/v1", tags=["verdicts"])
MAX_OFFSET = 10**9  # SQLite takes a 64-bit offset; anything past a billion rows is a mistake or an attack


def _unix_time(what: str) -> Any:
    return Query(ge=0, le=10**11, allow_inf_nan=False, description=f"Unix time in seconds, {what}.")


def _typed(value: str) -> Any:
    """A process filter's value as stored: a finite number when it reads as one, else the text."""
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _log(vlog: VerdictLog | None) -> VerdictLog:
    if vlog is None:
        raise ApiError(404, "no_verdict_log", "the verdict log is switched off (DEFECTSCOPE_VERDICT_DB is empty)")
    return vlog


class StationDrivers(BaseModel):
    station: str
    status: str = Field(description="ok, weak (the parameters explain little) or inconclusive (too little data).")
    message: str
    parts: int = Field(description="Parts with process parameters analysed (the station's newest).")
    fails: int
    cv_auc: float | None = Field(None, description="Cross-validated ROC AUC of P(fail | parameters).")
    drivers: list[dict[str, Any]] = Field(description="Top drivers: name, kind, importance, interval.")
    window: dict[str, Any] | None = Field(None, description="The suggested settings window (defectscope analyze).")


class DriversResponse(BaseModel):
    stations: list[StationDrivers]
    updated: float | None = Field(description="When these were computed (Unix time); null: not yet.")
    computing: bool = Field(description="A background refresh is running.")
    every_s: float
    error: str | None = None


@router.get("/process/drivers", response_model=DriversResponse,
            summary="Top process drivers of failures per station (cached; refreshed in the background)")
async def process_drivers(request: Request, service: ServiceDep, _: EngineerRole) -> DriversResponse:
    vlog = _log(service.verdict_log)
    cache = getattr(request.app.state, "process_drivers", None)
    if cache is None or cache.queries is not vlog.queries:
        cache = request.app.state.process_drivers = DriverCache(vlog.queries, service.settings.process_analysis_every_s)
    return DriversResponse(**cache.snapshot())


@router.get("/verdicts", response_model=VerdictsResponse, summary="Logged verdicts, newest first")
async def verdicts(
    service: ServiceDep, _: EngineerRole,
    since: Annotated[float | None, _unix_time("inclusive")] = None,
    until: Annotated[float | None, _unix_time("exclusive")] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Literal["pass", "fail", "review", "invalid"] | None = None,
    process: Annotated[str | None, Query(max_length=200, pattern=r'^[^"=\\\x00-\x1f]{1,64}=.{0,64}$',
                                         description="NAME=VALUE: only parts whose process parameter NAME had "
                                         "VALUE (numbers compare as numbers), e.g. tool_id=T3.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> VerdictsResponse:
    vlog = _log(service.verdict_log)
    match = None
    if process is not None:
        name, _, value = process.partition("=")
        match = (name, _typed(value))
    rows = await asyncio.get_running_loop().run_in_executor(
        None, lambda: vlog.query(since=since, until=until, station=station, verdict=verdict, process=match,
                                 limit=limit, offset=offset))
    return VerdictsResponse(verdicts=[VerdictRow(**r) for r in rows], count=len(rows))


def _read_kept(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


@router.post("/verdicts/{verdict_id}/label", status_code=201, response_model=SampleOut,
             responses=SAMPLE_ERRORS, openapi_extra=json_body(LabelRequest),
             summary="Turn a logged verdict's kept image into a labelled sample (after QA review)")
async def label_verdict(request: Request, service: ServiceDep, _: EngineerRole,
                        verdict_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> SampleOut:
    body = await read_json(request, LabelRequest)  # read only after the key was checked
    vlog = _log(service.verdict_log)
    loop = asyncio.get_running_loop()
    row = await loop.run_in_executor(None, vlog.get, verdict_id)
    if row is None:
        raise ApiError(404, "unknown_verdict", f"no verdict with id {verdict_id}: take ids from GET /v1/verdicts")
    data = await loop.run_in_executor(None, _read_kept, row["image_path"])
    if data is None:
        raise ApiError(409, "image_not_kept", f"verdict {verdict_id} ({row['verdict']}) has no kept image: the "
                       "service keeps images only of the outcomes in DEFECTSCOPE_KEEP_IMAGES_FOR (with "
                       "DEFECTSCOPE_KEEP_IMAGES_DIR set), or the file was removed")
    origin = SampleOrigin(via="verdict", note=body.note, station=row["station"], verdict_id=verdict_id)
    return await store_sample(service, data, body.label, new_class=body.new_class, origin=origin)
