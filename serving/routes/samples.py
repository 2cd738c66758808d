"""POST /v1/samples: a labelled image into the sample store (engineer key); shared by the verdict label route."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from datasets.intake import IntakeResult, SampleConflictError, SampleIntake, SampleOrigin, UnknownClassError
from datasets.layout import DatasetError, check_label
from inspection.errors import ImageDecodeError
from inspection.filelock import LockTimeout
from serving.deps import EngineerRole, ServiceDep
from serving.errors import ApiError, bad_image
from serving.schemas import ErrorResponse
from serving.service import InspectionService
from serving.upload import IMAGE_TYPES, read_form, too_large, unsupported

router = APIRouter(prefix="/v1", tags=["samples"])
log = logging.getLogger("defectscope.serving")
MAX_TEXT = 500


class SampleOut(BaseModel):
    sha256: str
    label: str
    path: str = Field(description="Where the image lies inside the sample dataset folder.")
    created: bool = Field(description="False when these exact bytes were already stored (nothing written).")
    split: str
    new_class: bool = Field(False, description="This sample created its label as a new defect class.")


class LabelRequest(BaseModel):
    label: str = Field(max_length=64, description="A class name: letters, digits, '_' or '-'.")
    note: str | None = Field(None, max_length=MAX_TEXT)
    new_class: bool = Field(False, description="Create the label as a new defect class if it is not one yet.")


SAMPLE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc} for code, desc in {
        401: "missing or invalid API key", 403: "needs an engineer key", 409: "conflict (see the error code)",
        413: "upload too large", 422: "bad label, unknown class, or undecodable image",
    }.items()
}


def samples_root(service: InspectionService) -> Path:
    s = service.settings
    if s.samples_dir is not None:
        return s.samples_dir
    if s.verdict_db is not None:
        return s.verdict_db.parent / "defectscope-samples"
    raise ApiError(409, "no_sample_store", "no sample folder is configured: set DEFECTSCOPE_SAMPLES_DIR")


async def store_sample(service: InspectionService, data: bytes, label: str, *, new_class: bool,
                       origin: SampleOrigin) -> SampleOut:
    """Run the intake off the event loop; its errors become 4xx answers."""
    try:
        check_label(label)  # no path tricks: the label becomes a folder name
    except DatasetError as exc:
        raise ApiError(422, "invalid_label", str(exc)) from None
    root = samples_root(service)
    card = service.predictor.card if service.predictor is not None else None
    intake = SampleIntake(root, known_classes=card.classes if card else (),
                          pass_classes=card.pass_classes if card else ("good",), max_pixels=service.settings.max_pixels)
    try:
        r: IntakeResult = await asyncio.get_running_loop().run_in_executor(
            None, lambda: intake.add(data, label, new_class=new_class, origin=origin))
    except UnknownClassError as exc:
        raise ApiError(422, "unknown_class", str(exc)) from None
    except SampleConflictError as exc:
        raise ApiError(409, "label_conflict", str(exc)) from None
    except ImageDecodeError as exc:
        raise bad_image(exc) from None
    except LockTimeout as exc:
        raise ApiError(503, "busy", str(exc), headers={"Retry-After": "5"}) from None
    except DatasetError as exc:  # the sample folder is broken (manifest, dataset.json)
        raise ApiError(409, "sample_store_error", str(exc)) from None
    except OSError as exc:
        raise ApiError(503, "storage_error", f"the sample could not be written ({exc.strerror or exc}); "
                       "nothing was stored: check the disk and retry") from None
    if r.created and service.samples_index is not None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, service.samples_index.add, r, origin)
        except service.samples_index.db.errors as exc:  # the sample is stored; only its listing is missing
            log.error("sample %s (%s) is stored in %s but not in the samples index: %s", r.sha256[:12], r.label,
                      root, exc)
    return SampleOut(sha256=r.sha256, label=r.label, path=r.path, created=r.created, split=r.split,
                     new_class=r.new_class)


def _text(value: Any, name: str, limit: int = MAX_TEXT) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(422, "invalid_request", f"{name} must be text of at most {limit} characters")
    return value


async def _read_form(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    files, fields = await read_form(request, max_files=1, max_fields=16)
    upload = next((u for name, u in files if name == "file"), None)
    if upload is None:
        raise ApiError(422, "missing_file", "the multipart body has no 'file' part with the image")
    if upload.content_type and upload.content_type not in IMAGE_TYPES:
        raise unsupported(upload.content_type)
    if len(upload.data) > limit:
        raise too_large(limit)
    return upload.data, fields


@router.post("/samples", status_code=201, response_model=SampleOut, responses=SAMPLE_ERRORS,
             summary="Add a labelled image to the sample store (multipart: file, label, note, station, "
                     "verdict_id, new_class)")
async def add_sample(request: Request, service: ServiceDep, _: EngineerRole) -> SampleOut:
    data, fields = await _read_form(request, service.settings.max_upload_bytes)
    label = _text(fields.get("label"), "label", 64)
    if label is None:
        raise ApiError(422, "invalid_label", "the 'label' field is missing: name the class of this image")
    verdict_raw = _text(fields.get("verdict_id"), "verdict_id", 20)
    if verdict_raw is not None and not verdict_raw.isdigit():
        raise ApiError(422, "invalid_request", "verdict_id must be a verdict's numeric id (see GET /v1/verdicts)")
    new_class = (fields.get("new_class") or "false").strip().lower()
    if new_class not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ApiError(422, "invalid_request", "new_class must be true or false")
    origin = SampleOrigin(via="api", note=_text(fields.get("note"), "note"),
                          station=_text(fields.get("station"), "station", 128),
                          verdict_id=int(verdict_raw) if verdict_raw else None)
    return await store_sample(service, data, label, new_class=new_class in ("true", "1", "yes", "on"), origin=origin)



class SampleRow(BaseModel):
    id: int
    ts: float = Field(description="When it was added (Unix time).")
    sha256: str
    label: str
    path: str
    split: str
    new_class: bool
    via: str = Field(description="api or verdict (a reviewed verdict's image).")
    station: str | None
    verdict_id: int | None
    note: str | None


class SamplesResponse(BaseModel):
    samples: list[SampleRow]


@router.get("/samples", response_model=SamplesResponse, summary="Samples added through the API, newest first "
            "(every instance's, on a shared database)")
async def list_samples(service: ServiceDep, _: EngineerRole,
                       label: Annotated[str | None, Query(max_length=64)] = None,
                       station: Annotated[str | None, Query(max_length=128)] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> SamplesResponse:
    index = service.samples_index
    if index is None:
        raise ApiError(404, "no_samples_index", "the verdict log is switched off, and the samples index with it")
    rows = await asyncio.get_running_loop().run_in_executor(
        None, lambda: index.recent(label=label, station=station, limit=limit, offset=offset))
    return SamplesResponse(samples=[SampleRow(**r) for r in rows])
