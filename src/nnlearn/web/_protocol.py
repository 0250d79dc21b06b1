"""uvicorn's HTTP/1.1 protocol with a deadline on request headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection
that sends nothing, or half its headers, it keeps open for as long as the client likes;
70 of them held ``nnlearn serve``'s 64 connections and every other request got 503.
:class:`HeaderDeadline` gives each request's headers :data:`HEADER_SECONDS` from the moment
the connection opens, or the last response ends, and closes the connection when they have
not all come by then. A subclass of uvicorn's own h11 protocol keeps its server (rather
than another ASGI server with such a timeout, Hypercorn say): one small class, and the
rest of the serving (signals, shutdown, the concurrency limit) unchanged.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderDeadline", "HEADER_SECONDS"]

#: Seconds a client has to send a request's headers; a browser sends them at once.
HEADER_SECONDS = 5.0


class HeaderDeadline(H11Protocol):
    """:class:`uvicorn.protocols.http.h11_impl.H11Protocol` that closes a connection whose
    request headers are not complete :data:`HEADER_SECONDS` after it opened or after its
    last response."""

    header_seconds = HEADER_SECONDS
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport):  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        """Whether a request's headers have come and its response has not ended."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()
