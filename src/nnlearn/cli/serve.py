"""``nnlearn serve``: the web application (:mod:`nnlearn.web`) on this machine, with uvicorn.

The model is read and the address bound before the server starts, so a bad MODEL or a
port in use is one error line (exit status 2). Ctrl-C stops the server cleanly, exit 0.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys

from ..errors import ModelFileError, NNLearnError, ParameterError
from ..persist._reading import regular_file
from ._common import MODEL_HELP, PRETRAINED, architecture, load_model_file, names_pretrained
from ._monitor import say
from .predict import MAX_MODEL_BYTES

SUMMARY = "a local web page: draw a digit and watch the network answer, see a model, train one and watch it learn"
EXAMPLES = """\
  nnlearn serve
  nnlearn serve nnlearn-model.npz --port 8080"""

#: Addresses that only this machine can reach.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(p):
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help=f"{MODEL_HELP} (default: {PRETRAINED})",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0: a free one)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name clients reach the server by (the Host header is checked against the served names); "
        "repeat for several",
    )


def _web():
    try:
        from .. import web
    except ImportError as exc:
        raise NNLearnError(str(exc).splitlines()[0]) from None
    return web


def _bind(host, port):
    """A listening socket on ``host``:``port`` (0: a free port)."""
    if not 0 <= port <= 65535:
        raise ParameterError(f"--port {port} is not a port number (0 to 65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ParameterError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot listen on {host} port {port}: {exc.strerror}") from None
    return sock


def _url(sock):
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _own_names():
    """This machine's name and its addresses: what a client on the network may put in Host."""
    names = {socket.gethostname()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn())
        for *_, address in socket.getaddrinfo(socket.gethostname(), None):
            names.add(str(address[0]))
    return sorted(names)


def _warn_if_open(host):
    if host not in LOOPBACK:
        say(
            f"nnlearn serve: WARNING: listening on {host}, not only on this machine: anyone who can reach this "
            "address can use the page, read the model and start training runs on this machine's processors "
            "(there is no login). Use --host 127.0.0.1 unless you mean it. Clients must reach it by this "
            "machine's name or address; for another name (a DNS alias, a proxy's), add --allow-host NAME."
        )


def run(args):
    web = _web()
    if args.model is None:
        model, source = None, web.PRETRAINED_SOURCE
    else:
        if not names_pretrained(args.model):
            regular_file(args.model, ModelFileError, "model file", MAX_MODEL_BYTES)
        model, source = load_model_file(args.model), args.model
    hosts = [args.host, *args.allow_host]
    if args.host in ("0.0.0.0", "::", ""):
        hosts.extend(_own_names())
    app = web.create_app(model, allowed_hosts=hosts, source=source)
    served = app.state.served
    sock = _bind(args.host, args.port)
    _warn_if_open(args.host)
    url = _url(sock)
    if args.json:
        print(json.dumps({"serving": url, "model": served.id, "source": served.source}), flush=True)
    else:
        given = "" if args.model else " (no MODEL given)"
        print(f"model: {served.source}{given}, {architecture(served.model)}")
        print(f"serving on {url}", flush=True)
        say("press Ctrl-C to stop")
    _serve(web, app, sock)
    say("nnlearn serve: stopped")
    return 0


class _Stopped(Exception):
    """SIGTERM, once uvicorn has shut down and handed it back."""


def _stopped(signum, frame):
    raise _Stopped


def _serve(web, app, sock):
    import uvicorn

    from ..web._protocol import HeaderDeadline

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            app.state.runs.cancel_all()  # a run going ends now, and with it its event streams
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
        server_header=False,
        limit_concurrency=app.state.limits.max_connections,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
        http=HeaderDeadline,
    )
    # uvicorn catches SIGINT and SIGTERM, shuts down, then raises them again against the
    # handlers it found: Ctrl-C as KeyboardInterrupt, SIGTERM as _Stopped (not a kill).
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
        sys.stdout.flush()
