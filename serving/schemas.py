"""Transport types of the HTTP API (pydantic schemas; the domain types live in ``inspection``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. image_too_large, overloaded.")
    message: str = Field(description="What went wrong and what to do about it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# Answers any route may give (the guard and the error handlers sit in front of every one), so the
# OpenAPI document lists them everywhere; routes add their own.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc} for code, desc in {
        401: "no API key, or an invalid one", 403: "this key's role (or station binding) may not do this",
        404: "no such thing (verdict, version, file)", 408: "the request body did not arrive in time",
        413: "the body is over this endpoint's limit", 415: "a content type this endpoint does not take",
        422: "a parameter, body or image that cannot be used", 429: "this client has too many requests open",
        503: "overloaded or not ready (see Retry-After)",
    }.items()
}


class ThresholdsOut(BaseModel):
    fail: float
    review: float | None


class ModelRef(BaseModel):
    name: str
    version: str


class ImageOut(BaseModel):
    sha256: str
    format: str
    width: int
    height: int
    bytes: int


class RegionOut(BaseModel):
    box: tuple[int, int, int, int] = Field(description="x, y, width, height in the image's own pixels.")
    area: int = Field(description="Image pixels the region's defect-map cells cover.")
    peak: float = Field(description="Highest defect-map probability in the region.")
    label: str = Field(description="The defect class whose map channel peaks there.")
    peak_xy: tuple[int, int] = Field(description="Where the peak lies, (x, y) in the image's pixels.")


class ExplanationOut(BaseModel):
    target: str = Field(description="The class the heatmap explains: the most probable defect class.")
    peak: tuple[int, int] = Field(description="Heatmap maximum as (x, y) in the overlay's pixels.")
    width: int
    height: int
    overlay_png: str = Field(description="Base64 PNG: the decoded frame (longer side bounded) with the heatmap "
                             "blended in: the model's defect map, or Grad-CAM for a model without one.")


class InspectResponse(BaseModel):
    request_id: str
    verdict: Literal["pass", "fail", "review", "invalid"] = Field(
        description="invalid: the image-quality gate refused the frame (see reason): retake it, never a pass.")
    reason: str | None = Field(None, description="Why an invalid frame was refused and what to fix.")
    label: str
    confidence: float
    defect_score: float = Field(description="Summed probability of the defect classes; compared to thresholds.")
    scores: dict[str, float]
    thresholds: ThresholdsOut
    model: ModelRef
    image: ImageOut
    station_id: str | None = None
    part_id: str | None = None
    metadata: dict[str, Any] | None = None
    process: dict[str, Any] | None = Field(None, description="The part's process parameters, as sent (X-Process).")
    batch_size: int = Field(description="Images in the inference micro-batch this one was part of.")
    timings_ms: dict[str, float] = Field(description="decode, preprocess, queue, inference, decision, total.")
    regions: list[RegionOut] = Field(default_factory=list, description="Where the model's defect map marks defects "
                                     "(highest peak first); empty for a clean part or a model without a map.")
    explanation: ExplanationOut | None = Field(None, description="Only with ?explain=true.")


class BatchItem(BaseModel):
    index: int
    filename: str | None = None
    result: InspectResponse | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    items: list[BatchItem]
    ok: int
    failed: int


class VerdictRow(BaseModel):
    id: int
    ts: float
    request_id: str
    station: str | None
    part_id: str | None
    image_sha256: str
    verdict: str
    label: str
    confidence: float
    defect_score: float
    scores: dict[str, float]
    model_name: str
    model_version: str
    latency_ms: float
    batch_size: int
    image_path: str | None
    metadata: dict[str, Any] | None
    process: dict[str, Any] | None = None
    regions: list[RegionOut] = Field(default_factory=list)
    width: int | None = Field(None, description="The frame as captured, in pixels (region boxes are in it).")
    height: int | None = None


class VerdictsResponse(BaseModel):
    verdicts: list[VerdictRow]
    count: int


class Health(BaseModel):
    status: Literal["ok", "not_ready"]
    model: ModelRef | None = None
    detail: str | None = None
