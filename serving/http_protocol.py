"""uvicorn's h11 protocol with a deadline on request headers.

uvicorn times out idle keep-alive connections, but a client that has sent part of a request
line or header block is waited for forever, and each such connection holds a slot of the
connection limit. Here a connection waiting for a request's headers gets ``header_timeout``
seconds from its first byte (or from its opening) to finish them; then it is closed. The
deadline is not renewed by further bytes, so trickling one byte a second does not help.

Selected with ``http="serving.http_protocol:GuardedH11Protocol"`` (an import string, so it works
in uvicorn's worker processes too); ``configure`` sets the deadline for this process.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

IMPORT_STRING = "serving.http_protocol:GuardedH11Protocol"


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        # IDLE: no complete request yet on this cycle (h11 buffers a partial request line or headers)
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _watch_headers(self) -> None:
        if not self._waiting_for_headers():
            self._cancel_header_timer()
        elif self._header_timer is None and self.timeout_keep_alive_task is None:
            # no keep-alive timer is watching (a new connection, or bytes of the next request arrived)
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete request headers in %.0f s",
                             self.header_timeout)
            self.transport.close()


def configure(header_timeout: float) -> str:
    """Set this process's header deadline; returns the import string for uvicorn's ``http`` option."""
    GuardedH11Protocol.header_timeout = header_timeout
    return IMPORT_STRING
