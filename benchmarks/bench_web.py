"""E. The web app's latency under an open-loop load, on loopback only.

``nnlearn serve --port 0`` runs in its own process with the course's pretrained network. A
client in this process sends ``POST /api/predict`` at a fixed rate, whatever the answers do
(open loop: request i is due at t0 + i / rate, and its latency counts from when it was due,
so a server that falls behind is charged for the queue it builds). Two bodies, each
separately: a JSON vector of the network's 400 inputs, and a 280 x 280 PNG of a digit (what
the draw page sends). For each rate, after a warm-up second: p50 and p95 of the latency; the
rates step up until p95 passes 50 ms, and the highest rate with p95 under it is reported.
No training runs meanwhile.

The client speaks HTTP/1.1 over asyncio streams on a few keep-alive connections: a
full-featured HTTP client costs more CPU per request than the server's prediction, and on
two cores the client's time is taken from the server. Everything is bounded: each rate runs
a few seconds and the ladder stops at the first rate whose p95 is over the limit.

    python benchmarks/bench_web.py            # writes benchmarks/results-web.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import cores, machine  # noqa: E402

RATES = (25, 50, 100, 200, 300, 400, 600, 800, 1200)
LIMIT_MS = 50.0
SECONDS, WARMUP = 4.0, 1.0
CONNECTIONS = 32


def start_server():
    """``nnlearn serve --port 0`` in a process of its own; (process, host, port)."""
    script = Path(sys.executable).parent / "nnlearn"
    proc = subprocess.Popen(
        [str(script), "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving on http://" in line:
            address = line.split("http://", 1)[1].strip().rstrip("/")
            host, port = address.rsplit(":", 1)
            return proc, host, int(port)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("nnlearn serve did not print its address")


def bodies():
    """The two request bodies, with their Content-Type: a JSON vector and a 280 x 280 PNG of the same digit."""
    from PIL import Image

    from nnlearn import load_digits20

    X, y = load_digits20()
    x = X[0]
    vector = json.dumps({"vector": [float(v) for v in x]}).encode()
    upright = x.reshape(20, 20, order="F")  # the course's digits are stored column-major
    ink = np.clip(upright, 0, 1)
    picture = Image.fromarray((255 * (1 - ink)).astype(np.uint8)).resize((280, 280), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    # The page sends a drawing's PNG as it is, image/png (it sent base64 in JSON before 0.3).
    return {"vector": ("application/json", vector), "png 280x280": ("image/png", buffer.getvalue())}


class Client:
    """A pool of keep-alive HTTP/1.1 connections, each used by one request at a time."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.idle: list = []

    async def post(self, path, body):
        """POST ``body``, a (Content-Type, bytes) pair; the answer's status."""
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, path, body)
            except (OSError, asyncio.IncompleteReadError, IndexError):
                writer.close()  # the server closed an idle connection: open another
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, path, body)

    async def _exchange(self, reader, writer, path, body):
        kind, data = body
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        writer.write(head + data)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        status = int(status_line.split()[1])
        if len(self.idle) < CONNECTIONS:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status


async def open_loop(client, body, rate, seconds):
    """Send at ``rate`` per second for ``seconds``; latencies (ms) of those due after the warm-up."""
    latencies, failures = [], {}
    n = int(rate * seconds)
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def one(due, keep):
        try:
            status = await client.post("/api/predict", body)
        except (OSError, asyncio.IncompleteReadError, IndexError):
            status = 0  # no answer: the connection failed or was closed
        if keep:
            if status != 200:
                failures[status] = failures.get(status, 0) + 1
            latencies.append(1000 * (loop.time() - due))

    tasks = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, i / rate >= WARMUP)))
    await asyncio.gather(*tasks)
    return np.array(latencies), failures


def ladder(host, port, body):
    rows = []
    for rate in RATES:
        client = Client(host, port)
        latencies, failures = asyncio.run(open_loop(client, body, rate, SECONDS))
        p50, p95 = np.percentile(latencies, [50, 95])
        # failures: how many answers of each status other than 200 (0: the connection failed)
        rows.append({"rate": rate, "p50_ms": float(p50), "p95_ms": float(p95), "failures": failures})
        print(f"  {rate:5d}/s  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  failures {failures or 'none'}", flush=True)
        if p95 > LIMIT_MS or failures:
            break
    sustained = [r["rate"] for r in rows if r["p95_ms"] <= LIMIT_MS and not r["failures"]]
    return {"rows": rows, "highest_rate_p95_under_50ms": max(sustained) if sustained else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results-web.json"))
    args = parser.parse_args(argv)
    proc, host, port = start_server()
    try:
        results = {"machine": machine(), "cores": cores(), "load_before": os.getloadavg(), "bodies": {}}
        for name, body in bodies().items():
            print(f"{name}:", flush=True)
            results["bodies"][name] = ladder(host, port, body)
        results["load_after"] = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
