"""POST /v1/review/upload: images or zips from the QA page, each answered with a verdict (and a heatmap).

They go through the same path as a station's images (logged under station ``qa-upload``, so a
failed one can be reviewed and labelled like any other), a few at a time within the service's
admission limit. The first ``MAX_HEATMAPS`` get a heatmap while the heatmap thread has room; the
page fetches the others' on demand. Zips are unpacked off the event loop within one budget per
request (serving/zipped.py). An unreadable file, zip member or image is an error row, never a
failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.deps import ServiceDep, StationRole
from serving.errors import ApiError
from serving.schemas import ErrorDetail, InspectResponse
from serving.upload import read_multipart
from serving.zipped import ZipBudget, images_from_zip, is_zip

router = APIRouter(prefix="/v1/review", tags=["review"])
UPLOAD_STATION = "qa-upload"
MAX_IMAGES = 200  # per request, zips included
MAX_ENTRIES = 1000  # zip entries looked at per request, images or not
MAX_HEATMAPS = 16  # per request: each costs a backward pass on the heatmap thread
MAX_NAME = 128


class UploadItem(BaseModel):
    name: str = Field(description="The file name as sent (or zip!member); a label only, never a path.")
    result: InspectResponse | None = None
    error: ErrorDetail | None = None


class UploadResponse(BaseModel):
    items: list[UploadItem]
    ok: int
    failed: int


def _label(name: str) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in name)
    return clean if len(clean) <= MAX_NAME else "…" + clean[-(MAX_NAME - 1):]


@router.post("/upload", response_model=UploadResponse,
             summary="Inspect uploaded images or zips of images, with heatmaps (multipart field 'files')")
async def upload(request: Request, service: ServiceDep, who: StationRole) -> UploadResponse:
    service.require_ready()
    s = service.settings
    files = await read_multipart(request, max_files=s.max_batch_items)
    if not files:
        raise ApiError(422, "missing_file", "the upload has no files: drop images or a zip of images")
    station = service.stations.admit(UPLOAD_STATION, None)
    budget = ZipBudget(max_images=MAX_IMAGES, max_entries=MAX_ENTRIES, max_file_bytes=s.max_upload_bytes,
                       max_total_bytes=s.max_batch_bytes)
    loop = asyncio.get_running_loop()
    todo: list[tuple[str, bytes]] = []
    items: list[UploadItem] = []
    for _field, up in files:
        name = _label(up.filename or "upload")
        if is_zip(up.filename, up.content_type, up.data):
            # CPU work: off the event loop, at low priority (serving.background)
            z = await loop.run_in_executor(service.background, images_from_zip, up.data, budget)
            todo += [(_label(f"{name}!{member}"), data) for member, data in z.images]
            items += [UploadItem(name=_label(f"{name}!{member}" if member else name),
                                 error=ErrorDetail(code="skipped", message=why)) for member, why in z.errors]
        elif len(up.data) > s.max_upload_bytes:
            items.append(UploadItem(name=name, error=ErrorDetail(
                code="payload_too_large", message=f"over the limit of {s.max_upload_bytes:,} bytes an image")))
        elif len(todo) >= MAX_IMAGES:
            items.append(UploadItem(name=name, error=ErrorDetail(code="skipped", message=f"more than {MAX_IMAGES} "
                                                                 "images in one upload: send the rest separately")))
        else:
            todo.append((name, up.data))
    step = max(1, s.max_batch_size)
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        with service.admitted(len(chunk)):
            for k, (name, data) in enumerate(chunk):
                wanted = start + k < MAX_HEATMAPS  # the rest get verdicts; the review page fetches their maps
                try:
                    with service.explain_pool.slot(required=False) if wanted else contextlib.nullcontext(False) \
                            as explain:
                        res = await service.inspect(data, station=station, part=name, metadata=None,
                                                    started=time.perf_counter(), explain=bool(explain))
                    items.append(UploadItem(name=name, result=res))
                except ApiError as exc:
                    service.metrics.errors.labels(kind=exc.code).inc()
                    items.append(UploadItem(name=name, error=ErrorDetail(code=exc.code, message=exc.message)))
    ok = sum(it.result is not None for it in items)
    return UploadResponse(items=items, ok=ok, failed=len(items) - ok)
