"""uvicorn's HTTP protocols with a deadline on request headers.

uvicorn times out idle keep-alive connections, but a client that has sent part of a request
line or header block is waited for forever, and each such connection holds a slot of the
connection limit. Here a connection waiting for a request's headers gets ``header_timeout``
seconds from its first byte (or from its opening) to finish them; then it is closed. The
deadline is not renewed by further bytes, so trickling one byte a second does not help.

The httptools parser (C, used when installed: it saves about half a millisecond a request
over h11) and h11 (pure Python, the fallback) get the same rule. Selected by import string,
so uvicorn's worker processes find it too; ``configure`` sets the deadline for this process.
"""

from __future__ import annotations

import asyncio
import importlib.util

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

H11_IMPORT = "serving.http_protocol:GuardedH11Protocol"
HTTPTOOLS_IMPORT = "serving.http_protocol:GuardedHttpToolsProtocol"


class _HeaderDeadline:
    """The timer: armed while a connection waits for a request's headers, never renewed by bytes."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)  # type: ignore[attr-defined]

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _still_waiting(self) -> bool:
        raise NotImplementedError

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if self._still_waiting() and not transport.is_closing():
            self.logger.info("closing a connection that sent no complete request headers in %.0f s",  # type: ignore[attr-defined]
                             self.header_timeout)
            transport.close()


class GuardedH11Protocol(_HeaderDeadline, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _still_waiting(self) -> bool:
        # IDLE: no complete request yet on this cycle (h11 buffers a partial request line or headers)
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _watch_headers(self) -> None:
        if not self._still_waiting():
            self._disarm()
        elif self.timeout_keep_alive_task is None:
            # no keep-alive timer is watching (a new connection, or bytes of the next request arrived)
            self._arm()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):  # type: ignore[misc,valid-type]
        _waiting = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._waiting = True
            self._arm()

        def on_message_begin(self) -> None:  # the first byte of a request: its headers are due in time
            super().on_message_begin()
            self._waiting = True
            self._arm()

        def on_headers_complete(self) -> None:
            self._waiting = False
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _still_waiting(self) -> bool:
            return self._waiting


def configure(header_timeout: float, parser: str = "auto") -> str:
    """Set this process's header deadline; returns the import string for uvicorn's ``http`` option."""
    _HeaderDeadline.header_timeout = header_timeout
    have_httptools = HttpToolsProtocol is not None and importlib.util.find_spec("httptools") is not None
    if parser == "httptools" and not have_httptools:
        raise RuntimeError("http_parser httptools is not installed: pip install httptools, or use h11")
    return HTTPTOOLS_IMPORT if parser in ("auto", "httptools") and have_httptools else H11_IMPORT
