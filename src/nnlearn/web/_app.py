"""The routes of the web application and :func:`create_app`.

Every answer of the API is JSON; every refusal is a 4xx with ``{"error": "<one line>"}``.
The routes and their shapes are in ``docs/web.md``. State lives on ``app.state``: the
served model (``served``, swapped in one assignment), the runs, the open event streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import itertools
import json
import re
import secrets
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import NNLearnError, ParameterError
from ..model._model import Model, save_model
from ..model._octave import load_pretrained
from ._figures import FIGURES, NotAvailable, available, figure_svg
from ._inputs import image_input, json_image, parse_json, vector_input
from ._limits import Limits, form_fields, train_options
from ._render import prediction
from ._runs import FINAL, Busy, Run, Runs
from ._security import LOCAL_HOSTS, Guard, read_body
from ._served import describe, serve

__all__ = ["create_app", "PRETRAINED_SOURCE"]

PRETRAINED_SOURCE = "the course's pretrained network (ex4weights.mat, shipped with nnlearn)"
#: The page's files, served from memory under these names: no request names a file path.
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# The page may load and connect to nothing but this server (images: also the tiles'
# data URLs and the figures' blobs).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_KEEPALIVE_SECONDS, _POLL_SECONDS = 15.0, 0.05


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def _static_files() -> dict[str, bytes]:
    folder = resources.files("nnlearn.web").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


def _with_choices(page: bytes, fields: list[dict[str, Any]]) -> bytes:
    """index.html with each of the training form's empty ``<select>`` filled with its
    field's choices, the default selected: the names the library knows at this request
    (a kind registered at run time too), before any script runs. app.js refreshes them,
    and sets the rest of the form, from ``GET /api/train/fields``."""
    text = page.decode()
    for field in (field for field in fields if "choices" in field):
        options = []
        for choice in field["choices"]:
            selected = " selected" if choice == field["default"] else ""
            options.append(f'<option value="{html.escape(choice)}"{selected}>{html.escape(choice)}</option>')
        select = f'<select id="{field["name"]}">'
        text = text.replace(f"{select}</select>", f"{select}{''.join(options)}</select>")
    return text.encode()


def _file(request: Request, name: str) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    content = request.app.state.static[name]
    if name == "index.html":
        headers.update({"Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})
        content = _with_choices(content, form_fields(request.app.state.limits))
    return Response(content, media_type=STATIC[name], headers=headers)


async def page(request: Request) -> Response:
    return _file(request, "index.html")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise HTTPException(404, f"no file {name!r} here")
    return _file(request, name)


async def favicon(request: Request) -> Response:
    return _file(request, "favicon.svg")


async def model_info(request: Request) -> JSONResponse:
    served = request.app.state.served
    return JSONResponse({**describe(served), "figures": available(served)})


async def tiles(request: Request) -> Response:
    served = request.app.state.served
    if served.tiles is None:
        raise HTTPException(404, "the model has no tiles: its inputs are not a square image, or it has no hidden layer")
    return Response(served.tiles, media_type="image/png", headers={"Cache-Control": "no-cache"})


async def figure(request: Request) -> Response:
    name, served = request.path_params["name"], request.app.state.served
    if name not in FIGURES:
        raise HTTPException(404, f"no figure {name!r}; the figures are {', '.join(FIGURES)}")
    try:
        svg = await run_in_threadpool(figure_svg, served, name)
    except NotAvailable as exc:
        raise HTTPException(404, f"figure {name}: {exc}") from None
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


def _model_bytes(model: Model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nnlearn-web-") as folder:
        return save_model(model, Path(folder) / "model.npz").read_bytes()


async def download(request: Request) -> Response:
    served = request.app.state.served
    data = await run_in_threadpool(_model_bytes, served.model)
    disposition = f'attachment; filename="nnlearn-model-{served.id}.npz"'
    return Response(data, media_type="application/octet-stream", headers={"Content-Disposition": disposition})


async def _decoded(decoders: ThreadPoolExecutor, data: bytes, served, limits: Limits, notes: list[str]):
    """An image's input, decoded in one of the server's few decoding threads.

    Their number bounds the memory of decoding: how many images are decoded at once, and
    how many threads' malloc arenas keep what the last image took. In Starlette's pool of
    40 threads, 8 PNGs of 4000x4000 zero pixels sent at once left the server 670 MB larger
    even with 2 decoding at a time (each thread's arena kept its image's memory).
    """
    loop = asyncio.get_running_loop()
    work = functools.partial(image_input, data, served, limits.max_image_pixels, notes)
    return await loop.run_in_executor(decoders, work)


async def download_onnx(request: Request) -> Response:
    """The served model as ONNX (float32): to run it without nnlearn (onnxruntime, a browser)."""
    from ..model._onnx import onnx_bytes

    served = request.app.state.served
    try:
        data = await run_in_threadpool(onnx_bytes, served.model, "float32")
    except ParameterError as exc:  # no onnx package, or a kind without an ONNX form
        raise HTTPException(501, str(exc)) from None
    disposition = f'attachment; filename="nnlearn-model-{served.id}.onnx"'
    return Response(data, media_type="application/octet-stream", headers={"Content-Disposition": disposition})


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def predict(request: Request) -> JSONResponse:
    served = request.app.state.served  # once: a swap mid-request does not mix two models
    limits: Limits = request.app.state.limits
    kind = _media_type(request)
    if kind != "application/json" and not kind.startswith("image/"):
        raise HTTPException(415, f"Content-Type {kind or '(none)'!r}: send application/json or an image/* body")
    body = await read_body(request, limits.max_image_bytes if kind.startswith("image/") else limits.max_body_bytes)
    notes: list[str] = []
    decoders: ThreadPoolExecutor = request.app.state.decoders
    if kind == "application/json":
        # {"vector": [n numbers]} or {"image": "data:...;base64,..."}: one object, one list;
        # commas for several times n numbers (4096 at least), so that a vector of the wrong
        # length is told so; parsing that many numbers takes a millisecond.
        payload = parse_json(body, max_containers=2, max_commas=max(4 * served.model.layer_sizes[0], 4096))
        if not isinstance(payload, dict) or len(payload) != 1 or next(iter(payload)) not in ("vector", "image"):
            keys = sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
            raise ParameterError(f'the body must be {{"vector": [...]}} or {{"image": "<base64>"}}, not {keys}')
        if "vector" in payload:
            x = vector_input(payload["vector"], served.model.layer_sizes[0])
        else:
            data = json_image(payload["image"])
            x = await _decoded(decoders, data, served, limits, notes)
    else:
        x = await _decoded(decoders, body, served, limits, notes)
    answer = prediction(served.model, x, served.side)
    return JSONResponse({"model": served.id, **answer, "notes": notes})


async def training_fields(request: Request) -> JSONResponse:
    # Read at each request: a kind registered after the app was made is listed too.
    return JSONResponse({"fields": form_fields(request.app.state.limits)})


async def start_training(request: Request) -> JSONResponse:
    limits: Limits = request.app.state.limits
    if _media_type(request) != "application/json":
        raise HTTPException(415, "send the training settings as application/json")
    body = await read_body(request, limits.max_body_bytes)
    # The settings: one object, one list (the hidden layers' sizes), a comma between each two.
    dataset, options = train_options(parse_json(body, max_containers=2, max_commas=64), limits)
    try:
        run = request.app.state.runs.start(dataset, options)
    except Busy as exc:
        raise HTTPException(409, str(exc)) from None
    return JSONResponse(
        {"run": run.id, "events": f"/api/train/{run.id}/events", "token": run.token, "max_iter": options.max_iter},
        status_code=202,
    )


async def current_training(request: Request) -> JSONResponse:
    """The run under way (a page reloaded mid-run follows it), or ``{"run": null}``."""
    run = request.app.state.runs.going()
    if run is None:
        return JSONResponse({"run": None})
    return JSONResponse({"run": run.id, "events": f"/api/train/{run.id}/events", "max_iter": run.options.max_iter})


def _run(request: Request) -> Run:
    run = request.app.state.runs.get(request.path_params["run"])
    if run is None:
        name = request.path_params["run"][:40]
        raise HTTPException(404, f"no training run {name!r} (finished runs are kept a while)")
    return run


async def cancel_training(request: Request) -> JSONResponse:
    run = _run(request)
    given = request.headers.get("x-run-token", "")
    if not secrets.compare_digest(given.encode("latin-1"), run.token.encode()):
        raise HTTPException(403, f"cancelling run {run.id} needs the X-Run-Token its start answered with")
    if run.finished:
        raise HTTPException(409, f"run {run.id} has already ended ({run.state})")
    run.cancelled.set()
    return JSONResponse({"cancelled": True})


class _EventStream(StreamingResponse):
    """A response that frees its slot among the open streams however it ends."""

    def __init__(self, content, state):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.state = state

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.state.open_streams -= 1


def _event(number: int, name: str, data: dict[str, Any]) -> str:
    return f"id: {number}\nevent: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


async def _events(run: Run, after: int):
    """The run's events after number ``after``, then the new ones as they come, to its end."""
    quiet = 0.0
    while True:
        ended = run.finished  # read first: if it has ended, its last event is among those read next
        found = run.since(after)
        for number, name, data in found:
            yield _event(number, name, data)
            after = number
        if ended or (found and found[-1][1] in FINAL):
            return
        quiet = 0.0 if found else quiet + _POLL_SECONDS
        if quiet >= _KEEPALIVE_SECONDS:  # a comment line keeps proxies and browsers from timing out
            yield ": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(_POLL_SECONDS)


#: A Last-Event-ID this server wrote: an event's number, ASCII digits (str.isdigit would
#: take "²", which int() refuses, and int() refuses more than 4300 digits).
_EVENT_NUMBER = re.compile(r"[0-9]{1,18}")


async def training_events(request: Request) -> Response:
    run, state = _run(request), request.app.state
    last = request.headers.get("last-event-id", "0").strip() or "0"
    if not _EVENT_NUMBER.fullmatch(last):
        raise HTTPException(400, f"Last-Event-ID {last[:40]!r} is not an event number this server sent")
    if state.open_streams >= state.limits.max_event_streams:
        raise HTTPException(429, f"{state.open_streams} event streams are open already; close one first")
    # Counted last, with nothing left to fail before the response that gives it back.
    stream = _EventStream(_events(run, int(last)), state)
    state.open_streams += 1
    return stream


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":
        message = f"nothing at {request.url.path[:100]}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path[:100]}"
    return _error(exc.status_code, message)


async def _bad_input(request: Request, exc: Exception) -> Response:
    return _error(400, str(exc) or type(exc).__name__)


async def _internal(request: Request, exc: Exception) -> Response:
    return _error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


ROUTES = [
    Route("/", page),
    Route("/static/{name}", static),
    Route("/favicon.ico", favicon),
    Route("/favicon.svg", favicon),
    Route("/api/model", model_info),
    Route("/api/model/tiles.png", tiles),
    Route("/api/model/figures/{name}.svg", figure),
    Route("/api/model/download", download),
    Route("/api/model/download.onnx", download_onnx),
    Route("/api/predict", predict, methods=["POST"]),
    Route("/api/train", start_training, methods=["POST"]),
    Route("/api/train", current_training, methods=["GET"]),
    Route("/api/train/fields", training_fields),
    Route("/api/train/{run}/events", training_events),
    Route("/api/train/{run}", cancel_training, methods=["DELETE"]),
]


def create_app(
    model: Model | None = None,
    *,
    allowed_hosts: Iterable[str] | None = None,
    limits: Limits | None = None,
    source: str | None = None,
) -> Starlette:
    """The web application, serving ``model`` (None: the course's pretrained network).

    Parameters
    ----------
    model : Model, optional
    allowed_hosts : iterable of str, optional
        Names the server is reached by besides 127.0.0.1, localhost and ::1 (the Host
        header is checked against them, without the port).
    limits : Limits, optional
        The server's bounds (default: :class:`Limits`'s).
    source : str, optional
        Where the model came from, for ``GET /api/model`` (a file's name, ...).

    Returns
    -------
    starlette.applications.Starlette
        Serve it with uvicorn; its lifespan's end cancels a training run still going.
    """
    if model is None:
        model, source = load_pretrained(), source or PRETRAINED_SOURCE
    elif not isinstance(model, Model):
        raise ParameterError(f"model must be an nnlearn Model or None, not {type(model).__name__}")
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise ParameterError(f"limits must be a nnlearn.web.Limits, not {type(limits).__name__}")
    numbers = itertools.count(1)
    first = serve(model, source or str(model.history.get("source") or "a model given to create_app"), numbers)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        app.state.runs.cancel_all()
        await run_in_threadpool(app.state.runs.join, 10.0)
        app.state.decoders.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Guard, hosts=[*LOCAL_HOSTS, *(allowed_hosts or ())])],
        exception_handlers={HTTPException: _http_error, NNLearnError: _bad_input, Exception: _internal},
        lifespan=lifespan,
    )
    app.state.limits, app.state.served, app.state.open_streams = limits, first, 0
    app.state.static = _static_files()
    app.state.decoders = ThreadPoolExecutor(limits.max_decoding, thread_name_prefix="nnlearn-decode")

    def swap(trained: Model) -> str:
        served = serve(trained, trained.history.get("source", "trained here"), numbers)
        app.state.served = served  # the one assignment that swaps the model
        return served.id

    app.state.runs = Runs(limits, swap)
    return app
