"""``pretrained`` names the course's weights inside nnlearn wherever a verb takes a model or
weights file; a file of that name in the current directory must be written ``./pretrained``."""

from __future__ import annotations

import pytest

from .helpers import assert_one_line_error, ok_json, run_cli


@pytest.fixture(autouse=True)
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_evaluate_pretrained_prints_the_course_s_figure(capsys):
    run = run_cli(capsys, "evaluate", "pretrained")
    assert run.returncode == 0, run.stderr
    assert "accuracy  97.60%" in run.stdout


def test_every_verb_that_takes_a_model_takes_pretrained(capsys, here):
    assert ok_json(run_cli(capsys, "cost", "--weights", "pretrained", "--json"))["weights"] == "pretrained"
    assert run_cli(capsys, "show", "pretrained").returncode == 0 and (here / "hidden-units.png").is_file()
    assert run_cli(capsys, "report", "pretrained", "report").returncode == 0 and (here / "report/index.html").is_file()
    assert run_cli(capsys, "export", "pretrained", "ex4.onnx").returncode == 0 or pytest.importorskip("onnx")
    predicted = ok_json(run_cli(capsys, "predict", "pretrained", "digits20", "--json"))
    assert len(predicted["predictions"]) == 5000


def test_a_file_named_pretrained_here_must_be_written_with_its_path(capsys, here):
    (here / "pretrained").write_bytes(b"not weights")
    run = run_cli(capsys, "evaluate", "pretrained")
    assert_one_line_error(run, "write ./pretrained for the file")
    assert (here / "pretrained").read_bytes() == b"not weights"


def test_a_bad_cluster_address_is_named_before_an_existing_output(capsys, here):
    pytest.importorskip("distributed")
    (here / "nnlearn-model.npz").write_bytes(b"kept")
    run = run_cli(capsys, "train", "--cluster", "abc", "--max-iter", "1")
    assert_one_line_error(run, "'abc' is not a scheduler address")
    assert (here / "nnlearn-model.npz").read_bytes() == b"kept"
