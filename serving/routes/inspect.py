"""POST /v1/inspect (one image) and POST /v1/inspect/batch (several, one verdict or error each)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from serving.deps import ServiceDep, StationRole
from serving.errors import ApiError, error_body
from serving.metadata import MetadataError, parse_object, parse_process
from serving.schemas import BatchItem, BatchResponse, ErrorDetail, ErrorResponse, InspectResponse
from serving.stations import check_ident, clean_ident
from serving.upload import IMAGE_TYPES, MULTIPART, read_multipart, read_single_image, too_large, unsupported

router = APIRouter(prefix="/v1", tags=["inspect"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc} for code, desc in {
        401: "missing or invalid API key", 403: "the key's role may not inspect, or not as this station",
        408: "the body did not arrive in time", 413: "upload too large", 415: "not an image content type",
        422: "empty, undecodable, truncated or oversized image; bad metadata, process parameters or ids; too many "
             "stations",
        429: "this client has too many requests open",
        503: "overloaded, heatmaps busy, verdict log unavailable or no model loaded (see Retry-After)",
    }.items()
}
_IMAGE_SCHEMA = {"type": "string", "format": "binary"}
_SINGLE_BODY = {"requestBody": {"required": True, "content": {
    **{t: {"schema": _IMAGE_SCHEMA} for t in ("image/jpeg", "image/png", "application/octet-stream")},
    MULTIPART: {"schema": {"type": "object", "properties": {"file": _IMAGE_SCHEMA}, "required": ["file"]}},
}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {MULTIPART: {"schema": {
    "type": "object", "properties": {"files": {"type": "array", "items": _IMAGE_SCHEMA}}}}}}}


def _metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        return parse_object(raw)
    except MetadataError as exc:
        raise ApiError(422, "invalid_metadata", str(exc)) from None


def _process(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        return parse_process(raw) or None
    except MetadataError as exc:
        raise ApiError(422, "invalid_process", str(exc)) from None


def _first(header: str | None, query: str | None) -> str | None:
    return header if header is not None else query


Station = Annotated[str | None, Header(alias="X-Station-Id", description="Which camera station sent it.")]
Part = Annotated[str | None, Header(alias="X-Part-Id", description="The part's id on the line.")]
Meta = Annotated[str | None, Header(alias="X-Metadata", description="Free metadata as a JSON object.")]
StationQ = Annotated[str | None, Query(description="Same as the X-Station-Id header.")]
PartQ = Annotated[str | None, Query(description="Same as the X-Part-Id header.")]
MetaQ = Annotated[str | None, Query(description="Same as the X-Metadata header.")]
Proc = Annotated[str | None, Header(alias="X-Process", description="The part's process parameters: a flat JSON "
                 'object of numbers, strings and booleans, e.g. {"belt_speed": 1.2, "tool_id": "T3"}.')]
ProcQ = Annotated[str | None, Query(description="Same as the X-Process header.")]
ExplainQ = Annotated[bool, Query(description="Add a Grad-CAM heatmap overlay (base64 PNG); costs a backward pass.")]


@router.post("/inspect", response_model=InspectResponse, responses=_ERRORS, openapi_extra=_SINGLE_BODY,
             summary="Inspect one image (raw image body or multipart 'file')")
async def inspect_one(request: Request, service: ServiceDep, who: StationRole,
                      x_station: Station = None, x_part: Part = None, x_meta: Meta = None, x_process: Proc = None,
                      station_id: StationQ = None, part_id: PartQ = None, metadata: MetaQ = None,
                      process: ProcQ = None, explain: ExplainQ = False) -> Response:
    started = time.perf_counter()
    service.require_ready()
    station = service.stations.admit(check_ident(_first(x_station, station_id), "station id"), who)
    part = check_ident(_first(x_part, part_id), "part id")
    meta = _metadata(_first(x_meta, metadata))
    proc = _process(_first(x_process, process))
    with service.explain_pool.slot() if explain else contextlib.nullcontext():
        # read before a slot is taken: a slow body holds none
        upload = await read_single_image(request, service.settings.max_upload_bytes)
        with service.admitted(1):
            out = await service.inspect(upload.data, station=station, part=part, metadata=meta, process=proc,
                                        started=started, explain=explain)
    # already an InspectResponse: serialised as it is, not validated against its own schema a second time
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/inspect/batch", response_model=BatchResponse, responses=_ERRORS, openapi_extra=_BATCH_BODY,
             summary="Inspect several images (multipart); an error in one item does not fail the others")
async def inspect_batch(request: Request, service: ServiceDep, who: StationRole,
                        x_station: Station = None, x_meta: Meta = None, x_process: Proc = None,
                        station_id: StationQ = None, metadata: MetaQ = None, process: ProcQ = None) -> BatchResponse:
    service.require_ready()
    station = service.stations.admit(check_ident(_first(x_station, station_id), "station id"), who)
    meta = _metadata(_first(x_meta, metadata))
    proc = _process(_first(x_process, process))  # one set for the batch: parts made together
    s = service.settings
    files = await read_multipart(request, max_files=s.max_batch_items)
    if not files:
        raise ApiError(422, "missing_file", "the multipart body has no file parts")

    async def one(upload: Any) -> InspectResponse:
        if upload.content_type and upload.content_type not in IMAGE_TYPES:
            raise unsupported(upload.content_type)
        if len(upload.data) > s.max_upload_bytes:
            raise too_large(s.max_upload_bytes)
        part = clean_ident(upload.filename)
        return await service.inspect(upload.data, station=station, part=part, metadata=meta, process=proc,
                                     started=time.perf_counter())

    with service.admitted(len(files)):
        results = await asyncio.gather(*(one(u) for _, u in files), return_exceptions=True)
    items = []
    for i, ((_, upload), res) in enumerate(zip(files, results, strict=True)):
        if isinstance(res, ApiError):
            service.metrics.errors.labels(kind=res.code).inc()
            items.append(BatchItem(index=i, filename=upload.filename, error=ErrorDetail(**error_body(
                res.code, res.message)["error"])))
        elif isinstance(res, BaseException):
            raise res  # a bug: the catch-all handler logs it
        else:
            items.append(BatchItem(index=i, filename=upload.filename, result=res))
    ok = sum(it.result is not None for it in items)
    return BatchResponse(items=items, ok=ok, failed=len(items) - ok)
