"""HTTP errors at the edge: one JSON shape ``{"error": {"code", "message"}}`` for every failure."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from inspection.errors import ImageDecodeError, ImageTooLargeError, PreprocessError

log = logging.getLogger("defectscope.serving")


class ApiError(Exception):
    """Raised by routes and dependencies; becomes a JSON error response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class BodyError(StarletteHTTPException):
    """Raised while a request body arrives (too large, too slow, no memory budget left).

    An HTTPException, so it passes FastAPI's own body parsing unchanged and reaches the handler.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.code, self.message = code, message


def bad_image(exc: ImageDecodeError | PreprocessError) -> ApiError:
    """The 422 for an image that cannot be used, with the same codes on every route."""
    if isinstance(exc, ImageTooLargeError):
        return ApiError(422, "image_too_large", str(exc))
    if isinstance(exc, ImageDecodeError):
        return ApiError(422, "undecodable_image", str(exc))
    return ApiError(422, "preprocess_failed", str(exc))


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _count(request: Request, kind: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(kind=kind).inc()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        _count(request, exc.code)
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        _count(request, "invalid_request")
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body("invalid_request", detail), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                                               "http_error")
        _count(request, code)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # the client hung up while its body was arriving: nobody is left to answer, nothing was done
        _count(request, "client_disconnected")
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Only genuine bugs land here: log the traceback for us, show the client no internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        _count(request, "internal")
        return JSONResponse(error_body("internal", "internal error; the service logged the details"),
                            status_code=500)
