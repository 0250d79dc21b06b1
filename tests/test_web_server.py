"""``nnlearn serve`` as a real process, tried as a local attacker and as a user with a phone.

Each test talks to a server started by ``nnlearn serve --port 0``: what is checked is what
uvicorn, the protocol and the app do together (a test client would bypass the first two).
The bounds are docs/web.md's: event-stream slots, a deadline on request headers, the memory
of decoding, bodies checked before they are parsed, a run followed and cancelled only with
its token, SIGTERM as a clean stop, phone photos read right (by ``nnlearn predict`` here, by the page's upload in
test_web_browser.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from .helpers import ENV, EX4WEIGHTS, SCRIPT

httpx = pytest.importorskip("httpx")


def _read_address(process, seconds):
    """The address ``nnlearn serve`` prints, read from its stdout within ``seconds``."""
    found = {}

    def read():
        for line in process.stdout:
            if line.startswith("serving on http://"):
                found["url"] = line.split()[-1]
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    return found.get("url")


class Server:
    """``nnlearn serve --port 0`` in a process of its own."""

    def __init__(self, folder):
        self.process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", "0"],
            cwd=folder,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = _read_address(self.process, 60)
        assert self.url, self.process.stderr.read() if self.process.poll() is not None else "no address"
        self.host, self.port = "127.0.0.1", int(self.url.rsplit(":", 1)[1].strip("/"))

    def peak_rss(self):
        """The server's peak resident memory so far (VmHWM), bytes."""
        with open(f"/proc/{self.process.pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def stop(self, signum=signal.SIGTERM):
        """The signal sent: the exit status and what it said on stderr."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return code, self.process.stderr.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("serve"))
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def zero_png(width, height):
    """A PNG of all-zero RGBA pixels: a few KB that decode to width x height x 4 bytes."""
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_last_event_ids_are_400_and_lose_no_stream_slot(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        run = client.post("/api/train", json={"dataset": "digits8", "hidden": [4], "max_iter": 1}).json()
        for bad in [b"\xb2", b"9" * 5000, b"-1", b"1.5", b"\xd9\xa3", b"1 2"] * 4:  # 24, more than the 8 slots
            answer = client.get(run["events"], headers={"Last-Event-ID": bad})
            assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["error"], answer.text
        for _ in range(10):  # more than the 8 slots, in turn: each gives its slot back
            answer = client.get(run["events"], headers={"Last-Event-ID": "0"})
            assert answer.status_code == 200 and "event: done" in answer.text


def test_idle_and_half_header_connections_are_closed_and_hold_no_slot(server):
    opened = time.monotonic()
    sockets = []
    for i in range(100):  # more than the server's 64 connections
        sock = socket.create_connection((server.host, server.port), timeout=15)
        if i % 2:
            sock.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        sockets.append(sock)
    closed = []
    try:
        for sock in sockets:
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""  # the server closed it, having answered nothing
            closed.append(time.monotonic() - opened)
    finally:
        for sock in sockets:
            sock.close()
    assert max(closed) < 10, max(closed)
    time.sleep(max(0.0, 12 - (time.monotonic() - opened)))
    start = time.monotonic()
    answer = httpx.get(server.url + "api/model", timeout=5)
    assert answer.status_code == 200 and time.monotonic() - start < 1


def test_a_body_of_nested_lists_is_refused_before_it_is_parsed(server):
    body = json.dumps({"vector": [[] for _ in range(2_700_000)]}, separators=(",", ":")).encode()[: 8 * 2**20 - 2]
    body = body[: body.rindex(b"[]") + 2] + b"]}"
    waits = []
    done = threading.Event()

    def watch():
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not done.is_set():
                start = time.monotonic()
                assert client.get("/api/model").status_code == 200
                waits.append(time.monotonic() - start)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.1)
        for _ in range(3):
            answer = httpx.post(
                server.url + "api/predict", content=body, headers={"Content-Type": "application/json"}, timeout=30
            )
            assert answer.status_code == 400 and "lists or objects" in answer.json()["error"], answer.text
    finally:
        done.set()
        watcher.join()
    assert len(waits) > 3 and max(waits) < 0.1, max(waits)
    # Integers beyond Python's 4300 digits are a 400 too, not a 500.
    answer = httpx.post(server.url + "api/predict", content=b'{"vector": [' + b"1" * 5000 + b"]}", timeout=30)
    assert answer.status_code == 415  # no Content-Type: said first
    answer = httpx.post(
        server.url + "api/predict",
        content=b'{"vector": [' + b"1" * 5000 + b"]}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400 and "number" in answer.json()["error"], answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_reloaded_page_finds_the_run_and_only_its_starter_cancels_it(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        settings = {"dataset": "digits20", "hidden": [100], "max_iter": 2000}
        run = client.post("/api/train", json=settings).json()
        try:
            going = client.get("/api/train").json()
            assert going == {"run": run["run"], "events": run["events"], "max_iter": 2000}
            assert client.delete(f"/api/train/{run['run']}").status_code == 403
            refused = client.post("/api/train", json=settings)
            assert refused.status_code == 409 and "token" not in refused.text
        finally:
            cancelled = client.delete(f"/api/train/{run['run']}", headers={"X-Run-Token": run["token"]})
        assert cancelled.json() == {"cancelled": True}
        events = client.get(run["events"]).text
        assert "event: cancelled" in events


def test_a_client_gone_mid_upload_logs_nothing(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b"\x89PNG" * 1000
        )
        time.sleep(0.2)
    time.sleep(0.3)
    assert httpx.get(server.url + "api/model", timeout=5).status_code == 200


@pytest.mark.slow  # a process of its own: imports and a start of a second or more
def test_the_verb_serves_on_a_free_port_and_stops_cleanly_on_ctrl_c(tmp_path):
    server = Server(tmp_path)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url) and server.port != 0
    page = httpx.get(server.url, timeout=30)
    assert page.status_code == 200 and 'id="draw-canvas"' in page.text
    icon = httpx.get(server.url + "favicon.ico", timeout=30)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    start = time.monotonic()
    code, stderr = server.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in stderr and "stopped" in stderr, stderr
    assert time.monotonic() - start < 20


def test_sigterm_stops_the_server_cleanly(server):
    """Last of the module's server: what it logged in all the tests above is checked here."""
    code, stderr = server.stop()
    assert code == 0 and "stopped" in stderr, (code, stderr)
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr


def test_decoding_images_in_parallel_keeps_memory_bounded(tmp_path):
    """8 PNGs of 4000x4000 zero RGBA pixels (62 KB each, 64 MB decoded) at once: the server's
    peak memory grows by less than 500 MB (it grew by 5.1 GB before decoding was bounded)."""
    server = Server(tmp_path)
    try:
        png = zero_png(4000, 4000)
        assert len(png) < 100_000
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/api/model")  # the server's first request made, its imports done
            before = server.peak_rss()

            def send(_):
                return client.post("/api/predict", content=png, headers={"Content-Type": "image/png"})

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(send, range(8)))
        grown = server.peak_rss() - before
        assert all(a.status_code == 400 and "blank" in a.json()["error"] for a in answers), answers[0].text
        assert grown < 500 * 2**20, f"{grown / 2**20:.0f} MiB"
        print(f"peak RSS grew by {grown / 2**20:.0f} MiB for 8 parallel 4000x4000 RGBA PNGs")
    finally:
        server.stop()


def test_nnlearn_predict_reads_phone_photos_right(phone_photos):
    result = subprocess.run(
        [str(SCRIPT), "predict", "--json", str(EX4WEIGHTS), *(str(path) for path, _ in phone_photos)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    predicted = [p["label"] for p in json.loads(result.stdout)["predictions"]]
    labels = [label for _, label in phone_photos]
    right = int(np.sum(np.array(predicted) == np.array(labels)))
    assert right >= 18, (right, predicted, labels)
