"""The QA web page (``/ui``) and the data it needs beyond the JSON API: kept images and heatmaps.

The page itself is static (``serving/ui/``: HTML, one script, one stylesheet, nothing fetched
from elsewhere) and served without a key; every call it makes sends the key the user pasted.
A strict Content-Security-Policy forbids inline script and foreign origins, and the script
builds the DOM with ``textContent``, so a station id, label or file name can never run as code.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse

from inspection.decode import DEFAULT_MAX_PIXELS
from inspection.errors import ImageDecodeError, PreprocessError
from inspection.imageops import encode_image, shrink
from inspection.predictor import Predictor
from serving.deps import EngineerRole, ServiceDep
from serving.errors import ApiError
from serving.routes.review_upload import router as upload_router

router = APIRouter(tags=["ui"])
router.include_router(upload_router)
UI_DIR = Path(__file__).resolve().parent.parent / "ui"
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SIDES = {"thumb": 200, "full": 960}


def _page_headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui", include_in_schema=False)
async def page() -> Response:
    return Response((UI_DIR / "index.html").read_bytes(), headers=_page_headers("text/html; charset=utf-8"))


@router.get("/ui/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    if name not in _STATIC:  # a fixed list: no client string becomes a path
        raise ApiError(404, "not_found", f"no such file: {name[:64]!r}")
    return Response((UI_DIR / name).read_bytes(), headers=_page_headers(_STATIC[name]))


def _kept_image(service: Any, verdict_id: int) -> bytes:
    vlog = service.verdict_log
    if vlog is None:
        raise ApiError(404, "no_verdict_log", "the verdict log is switched off (DEFECTSCOPE_VERDICT_DB is empty)")
    row = vlog.get(verdict_id)
    if row is None:
        raise ApiError(404, "unknown_verdict", f"no verdict with id {verdict_id}")
    path = row.get("image_path")  # written by the verdict log under a server-made name
    try:
        return Path(path).read_bytes() if path else b""
    except OSError:
        return b""


def _not_kept(verdict_id: int) -> ApiError:
    return ApiError(404, "image_not_kept", f"verdict {verdict_id} has no kept image (only the outcomes in "
                    "DEFECTSCOPE_KEEP_IMAGES_FOR are kept, with DEFECTSCOPE_KEEP_IMAGES_DIR set)")


def _jpeg(data: bytes, predictor: Predictor | None, side: int) -> bytes:
    from inspection.decode import decode_image

    image, _ = decode_image(data, color="bgr", min_size=(side // 2, side // 2),
                            max_pixels=predictor.max_pixels if predictor else DEFAULT_MAX_PIXELS)
    return encode_image(shrink(image, side), ".jpg", 82)


def _decoded(service: Any, predictor: Predictor, data: bytes) -> Any:
    """The kept image as a predictor Item (with its heatmap view as ``image``)."""
    item = predictor.load(data, keep_image=True)
    if item.error is not None:
        raise item.error
    return replace(item, image=service.explain_pool.view(item.image))


VerdictId = Annotated[int, PathParam(ge=1, le=2**62)]
_IMAGE_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}


@router.get("/v1/review/verdicts/{verdict_id}/image", summary="A logged verdict's kept image as JPEG (engineer)",
            response_class=Response, tags=["review"])
async def verdict_image(service: ServiceDep, _: EngineerRole, verdict_id: VerdictId,
                        size: Literal["thumb", "full"] = "thumb") -> Response:
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, _kept_image, service, verdict_id)
    if not data:
        raise _not_kept(verdict_id)
    try:
        jpg = await loop.run_in_executor(None, _jpeg, data, service.predictor, SIDES[size])
    except ImageDecodeError as exc:
        raise ApiError(422, "undecodable_image", str(exc)) from None
    return Response(jpg, media_type="image/jpeg", headers=_IMAGE_HEADERS)


@router.get("/v1/review/verdicts/{verdict_id}/heatmap", summary="Heatmap overlay (the defect map, or Grad-CAM) "
            "of a logged verdict's kept image, by the model now serving (engineer)", response_class=Response,
            tags=["review"])
async def verdict_heatmap(service: ServiceDep, _: EngineerRole, verdict_id: VerdictId) -> Response:
    predictor = service.require_ready()
    loop = asyncio.get_running_loop()
    with service.explain_pool.slot():  # 503 when the heatmap thread is busy: the page retries
        data = await loop.run_in_executor(None, _kept_image, service, verdict_id)
        if not data:
            raise _not_kept(verdict_id)
        try:
            item = await service.explain_pool.run(_decoded, service, predictor, data)
        except (ImageDecodeError, PreprocessError) as exc:
            raise ApiError(422, "undecodable_image", str(exc)) from None
        e = await service.explain_pool.explain(predictor, item)
        jpg = await service.explain_pool.run(encode_image, e.overlay, ".jpg", 85)
    return Response(jpg, media_type="image/jpeg",
                    headers={**_IMAGE_HEADERS, "X-Model-Version": predictor.card.version})
