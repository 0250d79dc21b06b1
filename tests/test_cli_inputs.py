"""What the command line refuses before any work: an output that is one of the verb's own
inputs (by the file's identity, not its spelling, and even with ``--force``), an empty
path, and options the run would ignore in silence. And warnings, on one line."""

import os
import warnings

import numpy as np
import pytest

import nnlearn
import nnlearn.cli.cost

from .helpers import assert_one_line_error, run_cli


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """``cli(*args)``: the command line in-process, in ``tmp_path``, which holds a small
    data file ``d.npz`` and a model ``m.npz`` trained on it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((40, 4)), y=np.arange(40) % 2)
    nnlearn.train(*nnlearn.load_data(tmp_path / "d.npz"), hidden_layer_sizes=(3,), max_iter=2).save(tmp_path / "m.npz")
    return lambda *args: run_cli(capsys, *args)


def contents(directory):
    return {path.name: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def links(tmp_path):
    """The data file under other names: hard links (one the default --out), a symbolic link,
    a report's page; and the model under another name."""
    os.link(tmp_path / "d.npz", tmp_path / "hard.npz")
    os.symlink("d.npz", tmp_path / "soft.npz")
    (tmp_path / "rep").mkdir()
    os.symlink("../d.npz", tmp_path / "rep" / "index.html")
    os.symlink("m.npz", tmp_path / "model-link.npz")


TRAIN = ("train", "--test-size", "0", "--hidden", "3", "--max-iter", "2", "--quiet", "--force")

CLASHES = {
    "same name": ([*TRAIN, "--data", "d.npz", "--out", "d.npz"], ["--out d.npz is also --data"]),
    "another spelling": ([*TRAIN, "--data", "d.npz", "--out", "./d.npz"], ["--out ./d.npz and --data d.npz", "same"]),
    "hard link": ([*TRAIN, "--data", "d.npz", "--out", "hard.npz"], ["--out hard.npz and --data d.npz"]),
    "symbolic link": ([*TRAIN, "--data", "soft.npz", "--out", "d.npz"], ["--out d.npz and --data soft.npz"]),
    "the default --out": ([*TRAIN, "--data", "d.npz"], ["--out nnlearn-model.npz and --data d.npz"]),
    "checkpoint": (
        [*TRAIN, "--data", "d.npz", "--checkpoint", "hard.npz", "--out", "new.npz"],
        ["--checkpoint hard.npz"],
    ),
    "train --report": ([*TRAIN, "--data", "d.npz", "--report", "rep", "--out", "new.npz"], ["--report rep/index.html"]),
    "show the data": (["show", "--data", "d.npz", "--out", "d.npz", "--force"], ["--out d.npz is also --data"]),
    "show a model": (["show", "m.npz", "--out", "model-link.npz", "--force"], ["--out model-link.npz", "MODEL m.npz"]),
    "report DIR": (["report", "model-link.npz", "rep", "--data", "d.npz", "--force"], ["DIR rep/index.html", "d.npz"]),
}


@pytest.mark.parametrize("case", CLASHES)
def test_an_output_that_is_an_input_is_refused_even_with_force(case, cli, tmp_path):
    argv, words = CLASHES[case]
    links(tmp_path)
    os.link(tmp_path / "d.npz", tmp_path / "nnlearn-model.npz")
    before = contents(tmp_path)
    result = cli(*argv)
    assert_one_line_error(result, *words, "never writes over its own input, even with --force")
    assert contents(tmp_path) == before  # nothing written, nothing trained


def test_a_resumed_run_may_rewrite_its_checkpoint_but_not_write_its_model_over_it(cli, tmp_path):
    first = cli(*TRAIN, "--data", "d.npz", "--checkpoint", "c.ckpt", "--out", "first.npz")
    assert first.returncode == 0, first.stderr
    refused = cli("train", "--resume", "c.ckpt", "--out", "./c.ckpt", "--force")
    assert_one_line_error(refused, "--out ./c.ckpt and --resume c.ckpt are the same file")
    resumed = cli("train", "--resume", "c.ckpt", "--checkpoint", "./c.ckpt", "--max-iter", "3", "--quiet")
    assert resumed.returncode == 0, resumed.stderr


def test_shard_refuses_an_out_that_is_or_holds_its_data(cli, tmp_path):
    assert cli("shard", "d.npz", "shards").returncode == 0
    before = contents(tmp_path)
    assert_one_line_error(cli("shard", "shards", "./shards", "--force"), "OUT ./shards and DATA shards")
    assert_one_line_error(cli("shard", "shards/../d.npz", ".", "--force"), "OUT . holds DATA shards/../d.npz")
    # A shard directory's files are inputs of a run on it.
    shard = next(path.name for path in (tmp_path / "shards").iterdir() if path.suffix == ".npy")
    refused = cli(*TRAIN, "--data", "shards", "--out", f"shards/{shard}")
    assert_one_line_error(refused, f"--out shards/{shard} lies inside --data shards")
    assert contents(tmp_path) == before


EMPTY = {
    "train --out": ["train", "--out", ""],
    "train --data": ["train", "--data", ""],
    "train --checkpoint": ["train", "--checkpoint", ""],
    "train --report": ["train", "--report", ""],
    "evaluate MODEL": ["evaluate", ""],
    "predict INPUT": ["predict", "m.npz", "d.npz", ""],
    "cost --weights": ["cost", "--weights", ""],
    "show --out": ["show", "--out", ""],
    "report DIR": ["report", "m.npz", ""],
    "shard OUT": ["shard", "d.npz", ""],
    "serve MODEL": ["serve", ""],
}


@pytest.mark.parametrize("case", EMPTY)
def test_an_empty_path_is_refused(case, cli, tmp_path):
    before = contents(tmp_path)
    label = case.split()[1]
    assert_one_line_error(cli(*EMPTY[case]), f"{label} is an empty path")
    assert contents(tmp_path) == before  # not the default name, not the current directory


UNUSED = {
    "--validation-fraction without --early-stopping": (["--validation-fraction", "0.5"], "--early-stopping"),
    "--n-iter-no-change with cg and no early stopping": (["--n-iter-no-change", "3"], "optimizer cg"),
    "--n-iter-no-change with --no-early-stopping": (["--n-iter-no-change", "3", "--no-early-stopping"], "cg"),
}


@pytest.mark.parametrize("case", UNUSED)
def test_an_option_the_run_would_ignore_is_refused(case, cli, tmp_path):
    options, word = UNUSED[case]
    result = cli(*TRAIN, "--data", "d.npz", *options)
    assert_one_line_error(result, options[0], word)
    assert not (tmp_path / "nnlearn-model.npz").exists()


def test_n_iter_no_change_is_read_by_sgd_without_early_stopping(cli, tmp_path):
    result = cli(*TRAIN, "--data", "d.npz", "--optimizer", "sgd", "--n-iter-no-change", "3", "--batch-size", "10")
    assert result.returncode == 0, result.stderr


def test_a_warning_is_one_line_naming_the_verb(cli, monkeypatch):
    real = nnlearn.cli.cost.load_data

    def load_data(source):
        warnings.warn("something odd\n   about   these data\nsecond line", UserWarning, stacklevel=1)
        return real(source)

    monkeypatch.setattr(nnlearn.cli.cost, "load_data", load_data)
    result = cli("cost", "--weights", "m.npz", "--data", "d.npz")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "nnlearn cost: warning: something odd\n"


def test_worker_warnings_still_say_a_lost_worker_their_own_way(capsys):
    pytest.importorskip("distributed")
    from nnlearn.cli._remote import worker_warnings
    from nnlearn.cli._streams import one_line_warnings
    from nnlearn.compute._cluster import WorkerLost

    with one_line_warnings("nnlearn train"), worker_warnings("nnlearn train"):
        warnings.warn(
            "lost the Dask worker tcp://127.0.0.1:1; its 10 examples were sent again", WorkerLost, stacklevel=1
        )
        warnings.warn("another\nwarning", RuntimeWarning, stacklevel=1)
    assert capsys.readouterr().err == (
        "nnlearn train: warning: lost the Dask worker tcp://127.0.0.1:1; its 10 examples were sent again\n"
        "nnlearn train: warning: another\n"
    )
