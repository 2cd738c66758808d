"""Reading request bodies. Their size limit and deadline are enforced while the bytes arrive, by
serving.guard, for every route alike; this module only turns bodies into uploads and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from serving.errors import ApiError

# The decoder sniffs the real format from the bytes; the declared type only has to be plausible.
IMAGE_TYPES = frozenset({
    "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/bmp", "image/x-ms-bmp", "image/tiff",
    "image/webp", "image/gif", "application/octet-stream",
})
MULTIPART = "multipart/form-data"
JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def unsupported(kind: str) -> ApiError:
    return ApiError(415, "unsupported_media_type",
                    f"content type {kind or '(none)'!r} is not accepted: send the image bytes as image/jpeg, "
                    f"image/png, image/bmp, image/tiff, image/webp or application/octet-stream, or as "
                    f"{MULTIPART} with a 'file' field")


async def read_body(request: Request) -> bytes:
    return await request.body()


async def read_form(request: Request, max_files: int, max_fields: int = 64) -> tuple[list[tuple[str, Upload]],
                                                                                     dict[str, str]]:
    """(file parts as (field name, upload) in the order sent, text fields) of a multipart body."""
    kind = media_type(request.headers.get("content-type"))
    if kind != MULTIPART:
        raise unsupported(kind)
    parser = MultiPartParser(request.headers, request.stream(), max_files=max_files, max_fields=max_fields)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_multipart", f"the multipart body could not be read: {exc.message}") from None
    files, fields = [], {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                files.append((name, Upload(data, value.filename, media_type(value.content_type) or None)))
            else:
                fields[name] = value
    finally:
        await form.close()
    return files, fields


async def read_multipart(request: Request, max_files: int) -> list[tuple[str, Upload]]:
    return (await read_form(request, max_files))[0]


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the image is larger than the limit of {limit:,} bytes: send a "
                    "smaller image (JPEG) or raise DEFECTSCOPE_MAX_UPLOAD_BYTES")


async def read_single_image(request: Request, limit: int) -> Upload:
    """The image of /v1/inspect: the raw body, or the ``file`` field of a multipart body (at most
    ``limit`` bytes; the guard has already bounded the body as a whole)."""
    kind = media_type(request.headers.get("content-type"))
    if kind in IMAGE_TYPES:
        return Upload(await read_body(request), None, kind)
    if kind != MULTIPART:
        raise unsupported(kind)
    files = await read_multipart(request, max_files=1)
    upload = next((u for name, u in files if name == "file"), None)
    if upload is None:
        raise ApiError(422, "missing_file", "the multipart body has no 'file' field with the image")
    if upload.content_type and upload.content_type not in IMAGE_TYPES:
        raise unsupported(upload.content_type)
    if len(upload.data) > limit:
        raise too_large(limit)
    return upload


async def read_json(request: Request, model: type[M], *, optional: bool = False) -> M:
    """A JSON body as ``model`` (the guard capped its size). ``optional``: an empty body is the defaults."""
    body = await read_body(request)
    if not body.strip() and optional:
        return model()
    kind = media_type(request.headers.get("content-type"))
    if kind != JSON:
        raise ApiError(415, "unsupported_media_type", f"send the body as {JSON}, not {kind or '(none)'!r}")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ApiError(422, "invalid_request", detail[:1000]) from None


def json_body(model: type[BaseModel], *, required: bool = True) -> dict:
    """The OpenAPI ``requestBody`` for a route that reads ``model`` with read_json (after its key check)."""
    return {"requestBody": {"required": required, "content": {JSON: {"schema": model.model_json_schema()}}}}
