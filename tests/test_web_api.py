"""``nnlearn serve``'s API through Starlette's test client, and the verb's options.

The browser tests (a person drawing on the page) are in test_web_browser.py, the verb as a
real process in test_web_server.py; these check
the contract the page relies on (docs/web.md): shapes, the preprocessing of ``nnlearn
predict``, every refusal as a 4xx with a one-line JSON error, training runs and their
events, the swap of the served model, and the safety checks.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import sys
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nnlearn import load_digits8, load_digits20, train
from nnlearn.core import ACTIVATIONS, OUTPUTS, forward
from nnlearn.datasets._builtin import split
from nnlearn.datasets._images import image_bytes_to_input, image_to_input
from nnlearn.errors import ParameterError
from nnlearn.model._model import Model, load_model
from nnlearn.model._octave import load_pretrained
from nnlearn.training._settings import OPTIMIZERS

from .helpers import assert_one_line_error, run_cli

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x suggests httpx2 for its test client; httpx still works
    from starlette.testclient import TestClient

from nnlearn.web import Limits, create_app
from nnlearn.web._app import STATIC
from nnlearn.web._limits import DATASETS

ORIGIN = "http://127.0.0.1:8000"


def client_of(app, **kwargs):
    return TestClient(app, base_url=ORIGIN, **kwargs)


@pytest.fixture(scope="module")
def pretrained():
    return load_pretrained()


@pytest.fixture
def client():
    with client_of(create_app()) as client:  # the context runs the lifespan: runs are cancelled at its end
        yield client


def png(upright, size=140, invert=True):
    """An upright image in [0, 1] as a person's picture would be: dark ink on white, larger."""
    ink = np.clip(upright, 0, 1)
    image = Image.fromarray(np.round(255 * (1 - ink if invert else ink)).astype(np.uint8))
    buffer = io.BytesIO()
    image.resize((size, size), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


def error_of(response, status, *words):
    """A refusal: ``status``, JSON ``{"error": one line}`` naming ``words``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"] and "\n" not in body["error"], body
    for word in words:
        assert word.lower() in body["error"].lower(), body["error"]
    return body["error"]


def events_of(client, address, headers=None):
    """A run's event stream read to its end: [(id, name, data)]."""
    found, number, name = [], None, None
    with client.stream("GET", address, headers=headers or {}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                number = int(line[4:])
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((number, name, json.loads(line[6:])))
    return found


# ------------------------------------------------------------------ the preprocessing


def test_bytes_and_a_file_give_identical_inputs(tmp_path):
    X, _ = load_digits20()
    X8, _ = load_digits8()
    for k, (row, side, framing) in enumerate([(X[3], 20, "mnist"), (X[2500], 20, "mnist"), (X8[7], 8, "fill")]):
        data = png(row.reshape(side, side, order="F"), size=90)
        (tmp_path / f"{k}.png").write_bytes(data)
        from_file = image_to_input(tmp_path / f"{k}.png", side * side, framing)
        assert np.array_equal(image_bytes_to_input(data, side * side, framing), from_file)


# ---------------------------------------------------------------------------- predict


def test_digits_drawn_as_png_are_read_as_nnlearn_predict_reads_them(client, pretrained, tmp_path):
    X, y = load_digits20()
    picks = [k for digit in range(10) for k in np.flatnonzero(y == digit)[:2]]
    right = 0
    for k in picks:
        data = png(X[k].reshape(20, 20, order="F"))
        answer = client.post("/api/predict", content=data, headers={"Content-Type": "image/png"}).json()
        (tmp_path / "digit.png").write_bytes(data)
        x = image_to_input(tmp_path / "digit.png")  # what `nnlearn predict MODEL digit.png` reads
        np.testing.assert_array_equal(answer["input"], np.clip(x.reshape(20, 20, order="F"), 0, 1).ravel())
        assert answer["prediction"] == pretrained.predict(x)[0]
        np.testing.assert_allclose(answer["probabilities"], pretrained.predict_proba(x)[0], rtol=1e-12)
        right += answer["prediction"] == y[k]
    # The pretrained network reads these 20 pictures as 19 of the 20 rows they were made
    # of (it reads the rows themselves all right): resampling costs one.
    assert right >= 19, right


def test_an_image_as_json_base64_or_a_data_url_gives_the_same_answer(client):
    X, _ = load_digits20()
    data = png(X[1234].reshape(20, 20, order="F"))
    raw = client.post("/api/predict", content=data, headers={"Content-Type": "image/png"}).json()
    text = base64.b64encode(data).decode()
    for image in (text, f"data:image/png;base64,{text}"):
        assert client.post("/api/predict", json={"image": image}).json() == raw


def test_strokes_drawn_as_the_page_draws_them_are_read_right(client):
    # The page's pen: white on black, round, a twelfth of the canvas wide.
    strokes = {
        1: [(0.52, 0.15), (0.50, 0.50), (0.48, 0.85)],
        7: [(0.25, 0.18), (0.75, 0.18), (0.60, 0.45), (0.45, 0.85)],
    }
    for digit, stroke in strokes.items():
        image = Image.new("RGB", (280, 280), "black")
        points, width = [(280 * fx, 280 * fy) for fx, fy in stroke], 280 // 12
        ImageDraw.Draw(image).line(points, fill="white", width=width, joint="curve")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        answer = client.post("/api/predict", content=buffer.getvalue(), headers={"Content-Type": "image/png"}).json()
        assert answer["prediction"] == digit, answer["probabilities"]


def test_a_vector_body_gives_the_model_s_own_numbers(client, pretrained):
    X, _ = load_digits20()
    x = X[42]
    answer = client.post("/api/predict", json={"vector": x.tolist()}).json()
    assert answer["model"] == client.get("/api/model").json()["id"]
    assert answer["classes"] == pretrained.classes.tolist() and answer["image_side"] == 20
    assert answer["prediction"] == pretrained.predict(x)[0]
    np.testing.assert_array_equal(answer["probabilities"], pretrained.predict_proba(x)[0])
    np.testing.assert_array_equal(answer["hidden"], forward(pretrained.thetas, x[None])[1][0])
    np.testing.assert_array_equal(answer["hidden_brightness"], answer["hidden"])  # sigmoid units: as they are
    np.testing.assert_array_equal(answer["input"], np.clip(x.reshape(20, 20, order="F"), 0, 1).ravel())


def test_the_model_is_described(client, pretrained):
    model = client.get("/api/model").json()
    assert model["layer_sizes"] == [400, 25, 10] and model["activation"] == model["output"] == "sigmoid"
    assert model["classes"] == pretrained.classes.tolist()
    assert model["image_side"] == 20 and model["framing"] == "mnist" and "pretrained" in model["source"]
    assert model["figures"] == {"cost": model["figures"]["cost"], "confusion": None, "hidden": None, "wrong": None}
    assert "no cost history" in model["figures"]["cost"]  # the course's weights come without one
    tiles = client.get(model["tiles"]["url"])
    assert tiles.status_code == 200 and tiles.headers["content-type"] == "image/png"
    # 25 tiles of 20x20 in 5 columns, a pixel apart and around: 5 * 21 + 1 pixels square.
    assert model["tiles"] == {"url": model["tiles"]["url"], "units": 25, "columns": 5, "side": 20, "gap": 1}
    sheet = np.asarray(Image.open(io.BytesIO(tiles.content)), dtype=float) / 255
    assert sheet.shape == (106, 106)
    w = pretrained.thetas[0][7, 1:]  # unit 8: row 1, column 2
    expected = 0.5 + 0.5 * w / np.abs(w).max()
    np.testing.assert_allclose(sheet[22:42, 43:63], expected.reshape(20, 20, order="F"), atol=0.5 / 255 + 1e-9)


def test_a_model_whose_inputs_are_no_image_answers_vectors_and_says_why_not_images():
    rng = np.random.default_rng(0)
    model = Model([rng.normal(size=(4, 31)), rng.normal(size=(3, 5))], np.array([0, 1, 2]))
    client = client_of(create_app(model, source="a 30-input model"))
    described = client.get("/api/model").json()
    assert described["image_side"] is None and described["tiles"] is None and described["source"] == "a 30-input model"
    assert all("30 inputs" in described["figures"][name] for name in ("hidden", "wrong", "confusion"))
    x = rng.normal(size=30)
    answer = client.post("/api/predict", json={"vector": x.tolist()}).json()
    assert answer["input"] is None and answer["image_side"] is None and len(answer["hidden"]) == 4
    np.testing.assert_array_equal(answer["probabilities"], model.predict_proba(x)[0])
    error_of(
        client.post("/api/predict", content=png(np.eye(8)), headers={"Content-Type": "image/png"}),
        400,
        "not a square image",
    )
    error_of(client.get("/api/model/tiles.png"), 404, "not a square image")
    error_of(client.get("/api/model/figures/hidden.svg"), 404, "30 inputs are not a square image")


def test_the_served_model_downloads_as_an_nnlearn_model_file(client, pretrained, tmp_path):
    response = client.get("/api/model/download")
    assert response.status_code == 200
    assert re.fullmatch(
        r'attachment; filename="nnlearn-model-[0-9a-f-]+\.npz"', response.headers["content-disposition"]
    )
    (tmp_path / "m.npz").write_bytes(response.content)
    model = load_model(tmp_path / "m.npz")
    assert all(np.array_equal(a, b) for a, b in zip(model.thetas, pretrained.thetas, strict=True))
    assert np.array_equal(model.classes, pretrained.classes)


def test_the_served_model_downloads_as_onnx(client, pretrained):
    ort = pytest.importorskip("onnxruntime")
    response = client.get("/api/model/download.onnx")
    assert response.status_code == 200
    assert re.fullmatch(
        r'attachment; filename="nnlearn-model-[0-9a-f-]+\.onnx"', response.headers["content-disposition"]
    )
    X, _ = load_digits20()
    graph = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    labels, _ = graph.run(None, {"input": X[::50].astype(np.float32)})
    np.testing.assert_array_equal(labels, pretrained.predict(X[::50]))


@pytest.mark.slow  # matplotlib and scikit-learn's confusion display: a few seconds the first time
def test_figures_are_svg_or_say_why_not(client):
    for name in ("confusion", "hidden", "wrong"):
        response = client.get(f"/api/model/figures/{name}.svg")
        assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
        assert b"<svg" in response.content[:500]
    error_of(client.get("/api/model/figures/cost.svg"), 404, "no cost history")
    error_of(client.get("/api/model/figures/nosuch.svg"), 404, "nosuch", "cost, confusion, hidden, wrong")


# ------------------------------------------------------------------- the page's files


def test_the_page_its_files_and_its_favicon_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in STATIC:
        assert client.get(f"/static/{name}").status_code == 200
    for icon in ("/favicon.ico", "/favicon.svg"):
        response = client.get(icon)
        assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    error_of(client.get("/static/..%2F__init__.py"), 404)
    error_of(client.get("/static/nosuch.js"), 404, "nosuch.js")


def test_the_page_has_the_contract_s_ids_and_the_library_s_choices(client):
    html = client.get("/").text
    ids = set(re.findall(r'id="([^"]+)"', html))
    contract = {
        *("nav-draw", "nav-model", "nav-train", "draw-canvas", "clear", "prediction", "bars", "input-view"),
        *("hidden-grid", "upload", "note", "model-settings", "train-form", "dataset", "hidden", "lambda"),
        *("activation", "optimizer", "max-iter", "start", "cancel", "download", "cost-curve", "cost-line"),
        *("train-hidden", "train-status"),
    }
    assert contract <= ids, contract - ids

    def options(select):
        block = re.search(rf'<select id="{select}">(.*?)</select>', html, re.S).group(1)
        return tuple(re.findall(r'<option value="([^"]+)"', block))

    assert options("activation") == tuple(ACTIVATIONS) and options("output") == tuple(OUTPUTS)
    assert options("optimizer") == OPTIMIZERS and options("dataset") == DATASETS


def test_the_page_asks_for_nothing_outside_the_server(client):
    for name in STATIC:
        text = client.get(f"/static/{name}").text
        outside = [url for url in re.findall(r"(?:https?:)?//[^\s\"')]+", text) if "www.w3.org/2000/svg" not in url]
        assert not [url for url in outside if not url.startswith("//")], (name, outside)
        assert "@import" not in text and "cdn" not in text.lower(), name


# ---------------------------------------------------------------------- bad requests

VECTOR = [0.0] * 400


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"content": b'{"vector": [1, 2', "headers": {"Content-Type": "application/json"}}, 400, ["not valid JSON"]),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400, ["not UTF-8"]),
        ({"json": [1, 2]}, 400, ['{"vector"']),
        ({"json": {"vector": [0.0] * 399}}, 400, ["399 values", "400 inputs"]),
        ({"json": {"vector": "0 1"}}, 400, ["vector", "list"]),
        ({"json": {"vector": [*VECTOR[:-1], "1"]}}, 400, ["vector[399]", "not a number"]),
        ({"json": {"vector": [*VECTOR[:-1], True]}}, 400, ["vector[399]", "not a number"]),
        ({"json": {"vector": [*VECTOR[:-1], 1e7]}}, 400, ["vector[399]", "magnitude"]),
        (
            {
                "content": json.dumps({"vector": [float("nan"), *VECTOR[1:]]}),
                "headers": {"Content-Type": "application/json"},
            },
            400,
            ["vector[0]", "finite"],
        ),
        (
            {
                "content": json.dumps({"vector": [*VECTOR[1:], float("inf")]}),
                "headers": {"Content-Type": "application/json"},
            },
            400,
            ["vector[399]", "finite"],
        ),
        ({"json": {"vector": VECTOR, "image": ""}}, 400, ["image", "vector"]),
        ({"json": {"picture": "x"}}, 400, ["picture"]),
        ({"json": {"image": "not base64!"}}, 400, ["base64"]),
        ({"json": {"image": 12}}, 400, ["image", "base64 string"]),
        ({"content": b"hello", "headers": {"Content-Type": "image/png"}}, 400, ["not a readable image"]),
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 400, ["not a readable image"]),
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, ["text/plain"]),
        ({"content": b"hello"}, 415, ["content-type"]),
    ],
    ids=lambda value: None,
)
def test_bad_predictions_are_4xx_with_one_line(client, kwargs, status, words):
    error_of(client.post("/api/predict", **kwargs), status, *words)


def test_a_blank_picture_has_no_digit(client):
    buffer = io.BytesIO()
    Image.new("L", (50, 50), 255).save(buffer, format="PNG")
    error_of(
        client.post("/api/predict", content=buffer.getvalue(), headers={"Content-Type": "image/png"}), 400, "blank"
    )


def test_bodies_and_images_are_bounded():
    app = create_app(limits=Limits(max_body_bytes=5000, max_image_pixels=100 * 100))
    client = client_of(app)
    big = json.dumps({"vector": [0.123456789] * 400}).encode()
    assert len(big) > 5000
    error_of(client.post("/api/predict", content=big, headers={"Content-Type": "application/json"}), 413, "5,000")
    # Without a Content-Length (chunked), the reading stops all the same.
    chunks = (big[i : i + 1000] for i in range(0, len(big), 1000))
    error_of(client.post("/api/predict", content=chunks, headers={"Content-Type": "application/json"}), 413, "5,000")
    buffer = io.BytesIO()
    Image.new("L", (101, 100), 255).save(buffer, format="PNG")  # a few hundred bytes, 10,100 pixels
    error_of(
        client.post("/api/predict", content=buffer.getvalue(), headers={"Content-Type": "image/png"}),
        400,
        "101x100 pixels",
    )


def test_only_the_served_names_are_answered():
    app = create_app(allowed_hosts=["digits.example"])
    for host in ("127.0.0.1:8000", "localhost:1234", "[::1]:8000", "localhost", "digits.example:80"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/model").status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::2]:8000"):
        error_of(TestClient(app, base_url=f"http://{host}").get("/api/model"), 400, "host", host.split(":")[0])


def test_state_changing_requests_from_another_origin_are_refused(client):
    X, _ = load_digits20()
    body = {"vector": X[0].tolist()}
    assert client.post("/api/predict", json=body, headers={"Origin": ORIGIN}).status_code == 200
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "null", "https://127.0.0.1:8000"):
        error_of(client.post("/api/predict", json=body, headers={"Origin": origin}), 403, "origin")
        error_of(client.post("/api/train", json={}, headers={"Origin": origin}), 403, "origin")
        error_of(client.delete("/api/train/abc", headers={"Origin": origin}), 403, "origin")
    assert client.get("/api/model", headers={"Origin": "http://evil.example"}).status_code == 200  # reading: CORS's job


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], ["JSON object"]),
        ({"epochs": 3}, ["unknown field 'epochs'"]),
        ({"dataset": "mnist"}, ["dataset", "digits20, digits8"]),
        ({"dataset": "/etc/passwd"}, ["dataset"]),
        ({"hidden": [25, 0]}, ["hidden"]),
        ({"hidden": "25"}, ["hidden"]),
        ({"hidden": [5000]}, ["hidden", "5000 units", "400 at most"]),
        ({"hidden": [10, 10, 10, 10]}, ["hidden", "4 layers", "3 at most"]),
        ({"lambda": -1}, ["lambda"]),
        ({"lambda": "1"}, ["lambda"]),
        ({"activation": "gelu"}, ["activation", "sigmoid"]),
        ({"output": "linear"}, ["output", "softmax"]),
        ({"optimizer": "newton"}, ["optimizer", "lbfgs"]),
        ({"max_iter": 0}, ["max_iter"]),
        ({"max_iter": 1.5}, ["max_iter"]),
        ({"max_iter": 10**6}, ["max_iter", "2000 at most"]),
    ],
    ids=lambda value: None,
)
def test_bad_training_requests_name_the_field(client, body, words):
    error_of(client.post("/api/train", json=body), 400, *words)


def test_unknown_runs_addresses_and_methods(client):
    error_of(client.get("/api/train/nosuch/events"), 404, "nosuch")
    error_of(client.delete("/api/train/nosuch"), 404, "nosuch")
    error_of(client.get("/api/nosuch"), 404, "/api/nosuch")
    error_of(client.get("/api/predict"), 405, "GET")
    error_of(client.post("/api/train", content=b"dataset=digits8", headers={"Content-Type": "text/plain"}), 415)


def test_limits_are_checked():
    with pytest.raises(ParameterError, match="max_iter must be a positive integer"):
        Limits(max_iter=0)
    with pytest.raises(ParameterError, match="max_run_seconds must be a positive number"):
        Limits(max_run_seconds=float("nan"))
    with pytest.raises(ParameterError, match="max_hidden_units must be a positive integer"):
        Limits(max_hidden_units=2.5)


# ----------------------------------------------------------------------- training


SMALL = {
    "dataset": "digits8",
    "hidden": [10],
    "lambda": 1,
    "activation": "sigmoid",
    "optimizer": "lbfgs",
    "max_iter": 40,
}


@pytest.mark.slow
def test_a_run_streams_its_falling_cost_then_swaps_the_model(client, tmp_path):
    before = client.get("/api/model").json()["id"]
    started = client.post("/api/train", json=SMALL)
    assert started.status_code == 202
    run = started.json()
    assert run["events"] == f"/api/train/{run['run']}/events"
    events = events_of(client, run["events"])
    names = [name for _, name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("done") == 1
    assert [number for number, _, _ in events] == sorted({number for number, _, _ in events})
    progress = [data for _, name, data in events if name == "progress"]
    assert [p["iteration"] for p in progress] == list(range(1, 41))  # every iteration, in order
    costs = [p["cost"] for p in progress]
    assert costs[-1] < costs[0] / 4 and sum(b > a for a, b in zip(costs, costs[1:])) == 0  # L-BFGS: never up
    hidden = [(number, data) for number, name, data in events if name == "hidden"]
    last = hidden[-1][1]  # one a second, and one of the last iteration
    assert last["iteration"] == 40 and last["units"] == 10 and last["side"] == 8
    picture = Image.open(io.BytesIO(base64.b64decode(last["png"].split(",", 1)[1])))
    assert picture.size == (4 * 9 + 1, 3 * 9 + 1)  # 10 tiles of 8x8 in 4 columns, 3 rows

    done = events[-1][2]
    model = client.get("/api/model").json()
    assert done["model"] == model["id"] != before and done["iterations"] == 40 and done["cost"] == costs[-1]
    assert model["layer_sizes"] == [64, 10, 10] and model["image_side"] == 8 and model["framing"] == "fill"
    # Its accuracies are those of the held-out 20% (stratified, seed 0) of digits8.
    (tmp_path / "m.npz").write_bytes(client.get("/api/model/download").content)
    trained = load_model(tmp_path / "m.npz")
    X_train, X_test, y_train, y_test = split(*load_digits8(), test_size=0.2, seed=0)
    assert done["test_accuracy"] == trained.score(X_test, y_test) and done["train_accuracy"] == trained.score(
        X_train, y_train
    )
    assert trained.history["data"] == "digits8" and trained.history["test_size"] == 0.2
    answer = client.post("/api/predict", json={"vector": X_test[0].tolist()}).json()
    assert answer["model"] == model["id"] and answer["prediction"] == trained.predict(X_test[0])[0]
    error_of(client.post("/api/predict", json={"vector": VECTOR}), 400, "64 inputs")  # the old model's size

    # A late reader gets every event again (of the pictures, the latest); with Last-Event-ID, those after it.
    assert events_of(client, run["events"]) == [e for e in events if e[1] != "hidden" or e[0] == hidden[-1][0]]
    assert events_of(client, run["events"], {"Last-Event-ID": str(events[-3][0])}) == events[-2:]
    # The cost figure of a trained model exists.
    assert client.get("/api/model/figures/cost.svg").status_code == 200
    error_of(
        client.delete(f"/api/train/{run['run']}", headers={"X-Run-Token": run["token"]}), 409, "already ended (done)"
    )


def test_a_run_is_cancelled_and_one_runs_at_a_time(client):
    before = client.get("/api/model").json()["id"]
    run = client.post("/api/train", json={**SMALL, "hidden": [100], "max_iter": 2000}).json()
    error_of(client.post("/api/train", json=SMALL), 409, "one run at a time")
    # A page reloaded mid-run finds it; cancelling needs the token its start answered with.
    assert client.get("/api/train").json() == {"run": run["run"], "events": run["events"], "max_iter": 2000}
    error_of(client.delete(f"/api/train/{run['run']}"), 403, "X-Run-Token")
    error_of(client.delete(f"/api/train/{run['run']}", headers={"X-Run-Token": "guess"}), 403, "X-Run-Token")
    assert client.delete(f"/api/train/{run['run']}", headers={"X-Run-Token": run["token"]}).json() == {
        "cancelled": True
    }
    events = events_of(client, run["events"])
    assert events[-1][1] == "cancelled" and "done" not in [name for _, name, _ in events]
    assert events[-1][2]["iterations"] < 2000
    assert client.get("/api/model").json()["id"] == before  # a cancelled run swaps nothing
    assert client.get("/api/train").json() == {"run": None}
    assert client.post("/api/train", json={**SMALL, "max_iter": 1}).status_code == 202  # free again


def test_a_failed_run_ends_in_an_error_event_and_swaps_nothing(client):
    before = client.get("/api/model").json()["id"]
    run = client.post("/api/train", json={**SMALL, "lambda": 1e300}).json()
    events = events_of(client, run["events"])
    assert [name for _, name, _ in events] == ["start", "error"]
    assert "diverged" in events[-1][2]["error"] and "\n" not in events[-1][2]["error"]
    assert client.get("/api/model").json()["id"] == before


def test_a_run_stops_at_the_wall_time_limit_and_keeps_its_model():
    with client_of(create_app(limits=Limits(max_run_seconds=1e-6))) as client:
        run = client.post("/api/train", json=SMALL).json()
        events = events_of(client, run["events"])
        done = events[-1][2]
        assert events[-1][1] == "done" and done["iterations"] == 1 and done["stopped"] == "the server's time limit"
        assert client.get("/api/model").json()["id"] == done["model"]


def test_event_streams_are_capped():
    with client_of(create_app(limits=Limits(max_event_streams=1))) as client:
        run = client.post("/api/train", json={**SMALL, "hidden": [100], "max_iter": 2000}).json()
        with client.stream("GET", run["events"]) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            next(lines)  # the stream is open and being read
            error_of(client.get(run["events"]), 429, "event streams")
            client.delete(f"/api/train/{run['run']}", headers={"X-Run-Token": run["token"]})
            assert "event: cancelled" in list(lines)
        # Its slot is free once it has ended.
        assert events_of(client, run["events"])[-1][1] == "cancelled"


# ------------------------------------------------------------------------ the verb


def test_serve_help(capsys):
    result = run_cli(capsys, "serve", "--help")
    assert result.returncode == 0
    assert "example:" in result.stdout and "nnlearn serve" in result.stdout.split("example:")[1]
    for option in ("--host", "--port", "--allow-host", "MODEL"):
        assert option in result.stdout


def test_serve_refuses_a_bad_model_or_port_before_starting(capsys, tmp_path):
    assert_one_line_error(run_cli(capsys, "serve", tmp_path / "nosuch.npz"), "nosuch.npz", "no such file")
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    assert_one_line_error(run_cli(capsys, "serve", tmp_path / "bad.npz"), "bad.npz")
    assert_one_line_error(run_cli(capsys, "serve", "--port", "70000"), "--port 70000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(run_cli(capsys, "serve", "--port", port), f"port {port}")


def test_serve_says_what_it_serves_and_where(capsys, monkeypatch, tmp_path):
    from nnlearn.cli import serve

    served = []
    monkeypatch.setattr(serve, "_serve", lambda web, app, sock: served.append((app, sock.getsockname())))
    result = run_cli(capsys, "serve", "--port", "0")
    assert result.returncode == 0 and "stopped" in result.stderr
    ((app, (host, port)),) = served
    assert result.stdout.splitlines() == [
        "model: the course's pretrained network (ex4weights.mat, shipped with nnlearn) (no MODEL given), 400-25-10",
        f"serving on http://127.0.0.1:{port}/",
    ]
    assert host == "127.0.0.1" and port > 0
    X, y = load_digits8()
    model = train(X, y, hidden_layer_sizes=[8], max_iter=3)
    model.history["data"] = "digits8"  # as `nnlearn train --data digits8` records it: its framing follows
    model.save(tmp_path / "m.npz")
    result = run_cli(capsys, "serve", tmp_path / "m.npz", "--port", "0", "--json")
    answer = json.loads(result.stdout)
    app, (_, port) = served[-1]
    assert answer == {
        "serving": f"http://127.0.0.1:{port}/",
        "model": app.state.served.id,
        "source": str(tmp_path / "m.npz"),
    }
    assert app.state.served.model.layer_sizes == (64, 8, 10) and app.state.served.framing == "fill"


def test_serve_warns_loudly_off_this_machine(capsys):
    from nnlearn.cli import serve

    serve._warn_if_open("127.0.0.1")
    assert capsys.readouterr().err == ""
    serve._warn_if_open("0.0.0.0")
    warning = capsys.readouterr().err
    assert "WARNING" in warning and "anyone who can reach" in warning and "training" in warning
    assert "--allow-host NAME" in warning


def test_on_every_address_the_machine_s_own_names_and_addresses_are_answered(capsys, monkeypatch):
    from nnlearn.cli import serve

    served = []
    monkeypatch.setattr(serve, "_serve", lambda web, app, sock: served.append(app))
    assert run_cli(capsys, "serve", "--host", "0.0.0.0", "--port", "0").returncode == 0
    (app,) = served
    own = [socket.gethostname(), *{info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}]
    with client_of(app) as client:
        for name in own:
            host = f"[{name}]" if ":" in name else name
            assert client.get("/api/model", headers={"Host": f"{host}:8000"}).status_code == 200, name
        assert client.get("/api/model", headers={"Host": "elsewhere.example"}).status_code == 400


def test_without_the_web_extra_one_line_says_what_to_install(monkeypatch, capsys):
    import nnlearn

    for name in [name for name in sys.modules if name == "nnlearn.web" or name.startswith("nnlearn.web.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(nnlearn, "web", raising=False)
    monkeypatch.setitem(sys.modules, "starlette", None)  # as if it were not installed
    with pytest.raises(ImportError, match=re.escape('pip install "nnlearn[web]"')):
        import nnlearn.web
    assert_one_line_error(run_cli(capsys, "serve"), 'pip install "nnlearn[web]"')
