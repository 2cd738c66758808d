"""Reading uploads with the size limit enforced while the bytes arrive (nothing unbounded is buffered)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from serving.errors import ApiError

# The decoder sniffs the real format from the bytes; the declared type only has to be plausible.
IMAGE_TYPES = frozenset({
    "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/bmp", "image/x-ms-bmp", "image/tiff",
    "image/webp", "image/gif", "application/octet-stream",
})
MULTIPART = "multipart/form-data"


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


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the upload is larger than the limit of {limit:,} bytes: send a "
                    "smaller image (JPEG) or raise DEFECTSCOPE_MAX_UPLOAD_BYTES")


async def bounded_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refuse before reading a byte
        raise _too_large(limit)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    parts = [chunk async for chunk in bounded_stream(request, limit)]
    return b"".join(parts)


async def read_multipart(request: Request, limit: int, max_files: int) -> list[tuple[str, Upload]]:
    """(field name, upload) for every file part, in the order sent."""
    parser = MultiPartParser(request.headers, bounded_stream(request, limit), max_files=max_files, max_fields=64)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_multipart", f"the multipart body could not be read: {exc.message}") from None
    out = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                out.append((name, Upload(data, value.filename, media_type(value.content_type) or None)))
    finally:
        await form.close()
    return out


async def read_single_image(request: Request, limit: int) -> Upload:
    """The image of /v1/inspect: the raw body, or the ``file`` field of a multipart body."""
    kind = media_type(request.headers.get("content-type"))
    if kind in IMAGE_TYPES:
        return Upload(await read_body(request, limit), None, kind)
    if kind != MULTIPART:
        raise unsupported(kind)
    files = await read_multipart(request, limit, max_files=1)
    upload = next((u for name, u in files if name == "file"), None)
    if upload is None:
        raise ApiError(422, "missing_file", "the multipart body has no 'file' field with the image")
    if upload.content_type and upload.content_type not in IMAGE_TYPES:
        raise unsupported(upload.content_type)
    return upload
