"""GET /v1/verdicts: query the verdict log; POST /v1/verdicts/{id}/label: a reviewed verdict's image
becomes a labelled sample (engineer key)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from datasets.intake import SampleOrigin
from serving.deps import EngineerRole, ServiceDep
from serving.errors import ApiError
from serving.routes.samples import SAMPLE_ERRORS, LabelRequest, SampleOut, store_sample
from serving.schemas import VerdictRow, VerdictsResponse
from serving.upload import json_body, read_json
from serving.verdict_log import VerdictLog

router = APIRouter(prefix="/v1", tags=["verdicts"])
MAX_OFFSET = 10**9  # SQLite takes a 64-bit offset; anything past a billion rows is a mistake or an attack


def _unix_time(what: str) -> Any:
    return Query(ge=0, le=10**11, allow_inf_nan=False, description=f"Unix time in seconds, {what}.")


def _log(vlog: VerdictLog | None) -> VerdictLog:
    if vlog is None:
        raise ApiError(404, "no_verdict_log", "the verdict log is switched off (DEFECTSCOPE_VERDICT_DB is empty)")
    return vlog


@router.get("/verdicts", response_model=VerdictsResponse, summary="Logged verdicts, newest first")
async def verdicts(
    service: ServiceDep, _: EngineerRole,
    since: Annotated[float | None, _unix_time("inclusive")] = None,
    until: Annotated[float | None, _unix_time("exclusive")] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Literal["pass", "fail", "review", "invalid"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> VerdictsResponse:
    vlog = _log(service.verdict_log)
    rows = await asyncio.get_running_loop().run_in_executor(
        None, lambda: vlog.query(since=since, until=until, station=station, verdict=verdict,
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
