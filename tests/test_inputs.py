"""``nnlearn predict`` on many inputs, good and bad: each reported, each error one line."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import nnlearn
from nnlearn.datasets import _files as datafiles

from .helpers import assert_one_line_error, ok_json, run_cli


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A digits8 model (64 inputs, framing "fill"), a few images and data files."""
    from threadpoolctl import threadpool_limits

    work = tmp_path_factory.mktemp("inputs")
    X, y = nnlearn.load_digits8()
    with threadpool_limits(1):
        model = nnlearn.train(X, y, hidden_layer_sizes=(16,), optimizer="lbfgs", max_iter=60)
    model.history["framing"] = "fill"
    model.save(work / "model.npz")
    for name, digit in [("a.png", 1000), ("c.png", 1001)]:
        pixels = np.round(255 * (1 - X[digit].reshape(8, 8, order="F"))).astype(np.uint8)
        Image.fromarray(pixels).resize((64, 64), Image.NEAREST).save(work / name)
    (work / "bad.png").write_bytes(b"\x89PNG not really")
    np.savetxt(work / "unlabelled.csv", X[:4], delimiter=",", fmt="%.4f")
    np.savetxt(work / "labelled.csv", np.c_[X[:4], y[:4]], delimiter=",", fmt="%.4f")
    np.savetxt(work / "wide.csv", np.c_[X[:4], y[:4], y[:4]], delimiter=",", fmt="%.4f")
    np.savetxt(work / "huge-label.csv", np.c_[X[:2], [3, 1e30]], delimiter=",", fmt="%g")
    np.savez(work / "x-only.npz", X=X[:3])
    first = Image.open(work / "a.png")
    first.save(work / "anim.gif", save_all=True, append_images=[Image.new("L", (64, 64), 255)])
    return work, model, X, y


@pytest.fixture
def cli(capsys, work, monkeypatch):
    monkeypatch.chdir(work[0])
    return lambda *args: run_cli(capsys, *args)


def test_every_good_input_is_reported_and_every_bad_one_is_one_line(cli, work):
    _, model, X, _ = work
    result = cli("predict", "model.npz", "a.png", "bad.png", "c.png")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["input", "label", "probability"]
    assert [line.split()[0] for line in lines[1:]] == ["a.png", "c.png"]
    errors = result.stderr.strip().splitlines()
    assert errors == ["nnlearn predict: error: bad.png: not a readable image (UnidentifiedImageError)"]

    out = json.loads(cli("predict", "model.npz", "a.png", "bad.png", "c.png", "--json").stdout)
    assert [entry["input"] for entry in out["inputs"]] == ["a.png", "bad.png", "c.png"]
    assert out["inputs"][0] == {"input": "a.png", "examples": 1, "warnings": []}
    assert "not a readable image" in out["inputs"][1]["error"] and "examples" not in out["inputs"][1]
    assert [row["input"] for row in out["predictions"]] == ["a.png", "c.png"]
    assert out["framing"] == "fill"  # the model's, recorded at training time


def test_images_are_prepared_with_the_models_framing(cli, work):
    _, model, X, y = work
    from nnlearn.datasets._images import image_to_input

    out = ok_json(cli("predict", "model.npz", "a.png", "c.png", "--json"))
    expected = model.predict(np.stack([image_to_input(name, 64, "fill") for name in ("a.png", "c.png")]))
    assert [row["label"] for row in out["predictions"]] == expected.tolist()


def test_all_inputs_bad_leaves_stdout_empty(cli):
    result = cli("predict", "model.npz", "bad.png", "nosuch.csv")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("nnlearn predict: error: ") for line in lines)
    assert "bad.png" in lines[0] and "nosuch.csv: no such file" in lines[1]


def test_a_csv_without_labels_is_not_misread(cli, work):
    _, model, X, y = work
    out = ok_json(cli("predict", "model.npz", "unlabelled.csv", "labelled.csv", "x-only.npz", "--json"))
    rows = out["predictions"]
    assert [row["input"] for row in rows] == ["unlabelled.csv"] * 4 + ["labelled.csv"] * 4 + ["x-only.npz"] * 3
    assert all("true_label" not in row for row in rows[:4] + rows[8:])
    assert [row["true_label"] for row in rows[4:8]] == y[:4].tolist()
    expected = model.predict(np.round(X[:4], 4)).tolist()
    assert [row["label"] for row in rows[:4]] == expected == [row["label"] for row in rows[4:8]]
    text = cli("predict", "model.npz", "unlabelled.csv").stdout
    assert "unlabelled.csv[3]" in text and "true" not in text


def test_a_csv_of_the_wrong_width_is_one_line(cli):
    assert_one_line_error(cli("predict", "model.npz", "wide.csv"), "wide.csv", "66 columns", "64 features and a label")


def test_a_label_that_does_not_fit_an_integer_is_named(cli):
    assert_one_line_error(cli("predict", "model.npz", "huge-label.csv"), "huge-label.csv", "1e+30", "line 2")
    assert_one_line_error(cli("train", "--data", "huge-label.csv"), "huge-label.csv", "1e+30")


def test_an_animation_is_read_with_a_one_line_warning(cli, work):
    result = cli("predict", "model.npz", "anim.gif", "--json")
    out = ok_json(result)
    assert result.stderr.strip().splitlines() == [
        "nnlearn predict: warning: anim.gif: has 2 frames (an animation or pages); only the first is read"
    ]
    assert out["inputs"][0]["warnings"] == [result.stderr.strip().split("warning: ", 1)[1]]
    assert (
        out["predictions"][0]["label"]
        == ok_json(cli("predict", "model.npz", "a.png", "--json"))["predictions"][0]["label"]
    )


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "directory"])
def test_a_special_model_file_is_refused_before_reading(cli, work, tmp_path, what):
    path = tmp_path / "model.npz"
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    assert_one_line_error(cli("predict", path, "a.png"), "model.npz", "not a regular model file", "refused")


@pytest.mark.parametrize("name", ["data.csv", "digit.png"])
def test_a_special_input_is_refused_and_the_others_still_read(cli, tmp_path, name):
    os.mkfifo(tmp_path / name)
    result = cli("predict", "model.npz", tmp_path / name, "a.png")
    assert result.returncode == 2 and "a.png" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nnlearn predict: error: ") and name in line and "FIFO" in line


def test_loading_a_big_csv_shows_progress_and_json_stays_clean(cli, monkeypatch):
    monkeypatch.setattr(datafiles, "PROGRESS_BYTES", 100)
    monkeypatch.setattr(datafiles, "_stderr_is_terminal", lambda: True)
    result = cli("predict", "model.npz", "labelled.csv", "--json")
    assert len(ok_json(result)["predictions"]) == 4  # stdout: the one JSON object, nothing else
    assert "reading labelled.csv" in result.stderr and "error" not in result.stderr
