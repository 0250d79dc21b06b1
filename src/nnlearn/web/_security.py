"""The checks every request passes before a route sees it, and bounded request bodies.

* **Host** (against DNS rebinding): a page on another site whose name is made to resolve
  to 127.0.0.1 sends its own name as the Host; only the served names pass (400 otherwise).
* **Origin** (against cross-site requests): a state-changing request (POST, DELETE, ...)
  that carries an Origin must come from the page's own origin, ``http://`` + its Host
  (403 otherwise). Tools that send no Origin (curl, scripts) are not browsers' pages.
* **Bodies** are read up to :attr:`~nnlearn.web._limits.Limits.max_body_bytes` (413 beyond),
  whatever the Content-Length says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

__all__ = ["LOCAL_HOSTS", "Guard", "host_name", "read_body"]

#: The names of this machine's loopback interface, always served.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def host_name(host: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refuse(status: int, message: str):
    """A plain ASGI response: the guard runs outside Starlette's routing."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]

    async def respond(send):
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return respond


class Guard:
    """ASGI middleware: the Host and Origin checks (see the module's docstring).

    Parameters
    ----------
    app : ASGI app
    hosts : iterable of str
        The names the server answers to, without ports; ``[::1]`` may be written either way.
    """

    def __init__(self, app, hosts: Iterable[str]):
        self.app = app
        self.hosts = frozenset(host_name(h) for h in hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            shown = host[:100] or "(none)"
            await _refuse(400, f"Host {shown!r} is not a name this server answers to")(send)
            return
        origin = headers.get("origin")
        if scope["method"] not in _SAFE_METHODS and origin is not None and origin != f"http://{host}":
            await _refuse(403, f"a {scope['method']} from origin {origin[:100]!r} is refused: not this page's")(send)
            return
        await self.app(scope, receive, _nosniff(send))


def _nosniff(send):
    """``send`` that marks every response ``X-Content-Type-Options: nosniff``: a browser then
    takes an SVG or a JSON answer for what its Content-Type says, never for a page."""

    async def marked(message):
        if message["type"] == "http.response.start":
            headers = [
                (name, value) for name, value in message.get("headers", []) if name.lower() != b"x-content-type-options"
            ]
            message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
        await send(message)

    return marked


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, or HTTP 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]{1,20}", declared) and int(declared) > limit:
        raise HTTPException(413, f"the body of {int(declared):,} bytes is more than this server takes ({limit:,})")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"the body is more than this server takes ({limit:,} bytes)")
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away mid-body: nothing to answer, nothing to log
        raise HTTPException(400, "the client closed the connection before the body ended") from None
    return b"".join(chunks)
