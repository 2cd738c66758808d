"""The service's front door, in front of every route: who is asking, how much they may send, how fast.

One ASGI middleware, so no route can forget a check and nothing is read before it runs:

* **Authentication first.** The key is checked from the headers before a byte of the body is
  read; only ``/healthz`` and the static QA page are open. Routes then check the role (403).
* **Requests per client.** Each key (each address with auth off) may have
  ``max_requests_per_client`` requests open at once, and one QA-page upload; past it 429, so
  one client cannot occupy the service's slots or buffers with uploads that trickle in.
* **Bodies.** Each route has a byte limit (images, batches, anything else is JSON), refused
  from Content-Length before reading and enforced while the bytes arrive; the whole body must
  arrive within ``body_timeout_s`` (408); and all bodies in memory at once stay within
  ``max_buffered_bytes`` (503 with Retry-After).

Header timeouts and the connection cap are uvicorn's side (``serving.http_protocol``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import KeyRing, Principal, Role
from serving.config import Settings
from serving.errors import BodyError
from serving.metrics import ServiceMetrics

PUBLIC_PATHS = frozenset({"/healthz", "/", "/ui"})
# Routes a person uses one request at a time (the QA page's upload: zips, heatmaps): per client.
ONE_AT_A_TIME = frozenset({"/v1/review/upload"})
PUBLIC_PREFIXES = ("/ui/static/",)
_MULTIPART_SLACK = 64 * 1024  # form fields and part headers around an image


def body_limit(s: Settings, path: str, content_type: str | None) -> int:
    """The largest body a route takes: an image (a multipart one has room for its part headers),
    a batch of them, or, for every other path, JSON."""
    if path in ("/v1/inspect/batch", "/v1/review/upload"):
        return s.max_batch_bytes
    if path in ("/v1/inspect", "/v1/samples"):
        multipart = (content_type or "").lower().startswith("multipart/")
        return s.max_upload_bytes + (_MULTIPART_SLACK if multipart else 0)
    return s.max_json_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    key = _header(scope, b"x-api-key")
    if key:
        return key
    scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings, keys: KeyRing, metrics: ServiceMetrics) -> None:
        self.app, self.settings, self.keys, self.metrics = app, settings, keys, metrics
        self.open_requests: defaultdict[str, int] = defaultdict(int)
        self.buffered = 0  # body bytes reserved by requests in progress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        principal = self._principal(scope)
        if principal is None and not public:
            await self._refuse(send, 401, *self._why_unauthenticated(scope),
                               headers={"WWW-Authenticate": "Bearer"})
            return
        client = principal.client if principal is not None else self._address(scope)
        s = self.settings
        if self.open_requests[client] >= s.max_requests_per_client:
            await self._refuse(send, 429, "too_many_requests", f"this client already has "
                               f"{s.max_requests_per_client} requests open: wait for their answers "
                               "(DEFECTSCOPE_MAX_REQUESTS_PER_CLIENT)", headers={"Retry-After": str(s.retry_after_s)})
            return
        heavy = f"{client} {path}" if path in ONE_AT_A_TIME else None
        if heavy is not None and self.open_requests[heavy]:
            await self._refuse(send, 429, "too_many_requests", "this client's previous upload is still being "
                               "inspected: send the next one when it is answered",
                               headers={"Retry-After": str(s.retry_after_s)})
            return
        limit = body_limit(s, path, _header(scope, b"content-type"))
        declared = _header(scope, b"content-length")
        size = int(declared) if declared is not None and declared.isdigit() else 0
        if size > limit:
            await self._refuse(send, 413, "payload_too_large", _too_large(limit))
            return
        if self.buffered + size > s.max_buffered_bytes:
            await self._refuse(send, 503, "overloaded", "the service is receiving too many uploads at once: retry",
                               headers={"Retry-After": str(s.retry_after_s)})
            return
        scope.setdefault("state", {})["principal"] = principal
        held = [k for k in (client, heavy) if k is not None]
        for k in held:
            self.open_requests[k] += 1
        reader = _BodyReader(self, receive, limit, reserved=size)
        try:
            await self.app(scope, reader.receive, send)
        finally:
            self.buffered -= reader.reserved
            for k in held:
                self.open_requests[k] -= 1
                if not self.open_requests[k]:
                    del self.open_requests[k]

    def _principal(self, scope: Scope) -> Principal | None:
        if self.keys.disabled:
            return Principal(Role.ENGINEER, self._address(scope))
        key = presented_key(scope)
        return self.keys.identify(key) if key else None

    def _why_unauthenticated(self, scope: Scope) -> tuple[str, str]:
        if presented_key(scope) is None:
            return "unauthenticated", ("this endpoint needs an API key: send it in the X-API-Key header "
                                       "(or Authorization: Bearer KEY)")
        return "invalid_api_key", "the API key is not valid: check the station's configuration"

    @staticmethod
    def _address(scope: Scope) -> str:
        client = scope.get("client")
        return f"addr:{client[0] if client else 'unknown'}"

    async def _refuse(self, send: Send, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> None:
        self.metrics.errors.labels(kind=code).inc()
        await send_error(send, status, code, message, headers)


def _too_large(limit: int) -> str:
    return (f"the request body is larger than the limit of {limit:,} bytes for this endpoint: send a smaller "
            "image (JPEG) or raise DEFECTSCOPE_MAX_UPLOAD_BYTES / DEFECTSCOPE_MAX_BATCH_BYTES")


class _BodyReader:
    """``receive`` for the app: the byte limit, the deadline and the shared buffer budget."""

    def __init__(self, guard: Guard, receive: Receive, limit: int, reserved: int) -> None:
        self.guard, self._receive, self.limit = guard, receive, limit
        self.reserved = reserved
        guard.buffered += reserved
        self.received = 0
        self.done = False
        self.deadline = time.monotonic() + guard.settings.body_timeout_s

    async def receive(self) -> Message:
        if self.done:  # after the body only a disconnect can come: no deadline for that wait
            return await self._receive()
        remaining = self.deadline - time.monotonic()
        try:
            message: dict[str, Any] = await asyncio.wait_for(self._receive(), max(0.0, remaining))  # type: ignore[assignment]
        except asyncio.TimeoutError:
            raise BodyError(408, "body_timeout", f"the request body did not arrive within "
                            f"{self.guard.settings.body_timeout_s:.0f} s: send it at once, or raise "
                            "DEFECTSCOPE_BODY_TIMEOUT_S for a slow network") from None
        if message["type"] != "http.request":
            self.done = True
            return message
        self.received += len(message.get("body", b""))
        self.done = not message.get("more_body", False)
        if self.received > self.limit:
            raise BodyError(413, "payload_too_large", _too_large(self.limit))
        if self.received > self.reserved:  # no or a lower Content-Length: reserve as the bytes arrive
            grow = self.received - self.reserved
            if self.guard.buffered + grow > self.guard.settings.max_buffered_bytes:
                raise BodyError(503, "overloaded", "the service is receiving too many uploads at once: retry",
                                headers={"Retry-After": str(self.guard.settings.retry_after_s)})
            self.guard.buffered += grow
            self.reserved += grow
        return message
