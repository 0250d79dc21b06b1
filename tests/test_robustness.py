"""Bad input never crashes, never computes silently wrong results, never changes a file.

Every case runs the command line (:func:`nnlearn.cli.main`, in this process) and must end
with exit status 2, one line on stderr naming the problem, no traceback, and the working
directory exactly as it was (no file written, changed or removed).
"""

import hashlib
import json
import os
import pickle
import stat

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

import nnlearn

from .helpers import EX4WEIGHTS, assert_one_line_error, run_cli


def write_inputs(work):
    """One file per kind of bad input, next to a good model and good data."""
    rng = np.random.default_rng(1)
    X, y = nnlearn.load_digits8()
    good = nnlearn.train(X, y, hidden_layer_sizes=(10,), optimizer="lbfgs", max_iter=30)
    good.save(work / "model.npz")
    np.savez(work / "good.npz", X=X[:50], y=y[:50])
    model_bytes = (work / "model.npz").read_bytes()
    (work / "truncated-model.npz").write_bytes(model_bytes[: len(model_bytes) // 2])
    np.savez(work / "data.npz", X=X, y=y)
    data_bytes = (work / "data.npz").read_bytes()
    (work / "truncated.npz").write_bytes(data_bytes[: len(data_bytes) // 3])
    savemat(work / "full.mat", {"X": X, "y": y[:, None]})
    mat_bytes = (work / "full.mat").read_bytes()
    (work / "truncated.mat").write_bytes(mat_bytes[: len(mat_bytes) // 3])
    (work / "csv-named.npz").write_text("1,2,0\n3,4,1\n")
    (work / "text-named.mat").write_text("this is not a MATLAB file\n")
    savemat(work / "no-x.mat", {"y": y[:, None]})
    savemat(work / "no-y.mat", {"X": X})
    np.savez(work / "x-1d.npz", X=X[:, 0], y=y)
    np.savez(work / "x-3d.npz", X=X.reshape(-1, 8, 8), y=y)
    np.savez(work / "lengths.npz", X=X, y=y[:-1])
    X_nan, X_inf = X.copy(), X.copy()
    X_nan[3, 4], X_inf[5, 6] = np.nan, np.inf
    np.savez(work / "nan.npz", X=X_nan, y=y)
    np.savez(work / "inf.npz", X=X_inf, y=y)
    (work / "cells.csv").write_text("0.5,1,0\n0.25,abc,1\n")
    np.savez(work / "one-class.npz", X=X[:20], y=np.zeros(20, dtype=int))
    np.savez(work / "empty.npz", X=np.zeros((0, 64)), y=np.zeros(0, dtype=int))
    np.savez(work / "unknown-labels.npz", X=X[:20], y=np.arange(20) + 5)
    np.savez(work / "features-400.npz", X=rng.random((10, 400)), y=np.arange(10) % 10)
    savemat(work / "no-chain.mat", {"Theta1": rng.random((25, 401)), "Theta2": rng.random((10, 30))})
    np.savez(work / "pickled.npz", X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    (work / "raw-pickle.npz").write_bytes(pickle.dumps({"X": [1, 2]}))
    # A model of non-square input count (6 features): no image can be fitted to it.
    nnlearn.train(rng.random((20, 6)), np.arange(20) % 2, hidden_layer_sizes=(3,), max_iter=5).save(work / "m6.npz")
    Image.fromarray((rng.random((30, 30)) * 255).astype(np.uint8)).save(work / "digit.png")
    tamper(work, "model.npz", "tampered.npz", lambda a: a.update(theta1=a["theta1"] * 1.0001))
    tamper(work, "model.npz", "newer.npz", newer_version)
    (work / "existing.npz").write_bytes(b"the user's precious file")
    write_crafted_models(work, good)
    savemat(work / "octave-text.mat", {"Theta1": "hello", "Theta2": rng.random((10, 26))})
    nan_theta = rng.random((25, 401))
    nan_theta[0, 0] = np.nan
    savemat(work / "octave-nan.mat", {"Theta1": nan_theta, "Theta2": rng.random((10, 26))})
    Image.new("L", (20000, 10000), 255).save(work / "bomb.png")
    (work / "a-directory").mkdir()
    (work / "a-file").write_text("not a directory")
    # A FIFO stands in for /dev/null and other special files: --force must not replace it.
    os.mkfifo(work / "a-fifo")
    (work / "rep").mkdir()
    os.mkfifo(work / "rep" / "digits.png")
    from nnlearn.cli import main

    assert (
        main(
            [
                "train",
                "--data",
                "digits8",
                "--max-iter",
                "3",
                "--quiet",
                "--checkpoint",
                str(work / "run.ckpt"),
                "--out",
                str(work / "run-model.npz"),
            ]
        )
        == 0
    )


def write_crafted_models(work, good):
    """Model files whose checksums are right but whose contents are not a model:
    the checksum only catches accidents, so the contents are checked too."""
    from nnlearn.model._model import FORMAT
    from nnlearn.persist._archive import write_archive

    thetas = {f"theta{l}": theta for l, theta in enumerate(good.thetas, start=1)}
    meta = {"lam": 1.0, "network": {"activation": "sigmoid", "output": "sigmoid"}, "history": {}}
    cases = {
        "odd-name.npz": ({**thetas, "thetax": good.thetas[0], "classes": good.classes}, meta),
        "int-weights.npz": (
            {"theta1": good.thetas[0].astype(int), "theta2": good.thetas[1].astype(int), "classes": good.classes},
            meta,
        ),
        "3d-weights.npz": ({"theta1": good.thetas[0][None], "theta2": good.thetas[1], "classes": good.classes}, meta),
        "nan-weights.npz": (
            {"theta1": good.thetas[0] * np.nan, "theta2": good.thetas[1], "classes": good.classes},
            meta,
        ),
        "list-history.npz": ({**thetas, "classes": good.classes}, {**meta, "history": [1, 2]}),
        "no-network.npz": ({**thetas, "classes": good.classes}, {"lam": 1.0, "history": {}}),
        "unknown-activation.npz": (
            {**thetas, "classes": good.classes},
            {**meta, "network": {"activation": "swish", "output": "sigmoid"}},
        ),
    }
    for name, (arrays, extra) in cases.items():
        write_archive(work / name, FORMAT, arrays, extra, overwrite=True)


def tamper(work, source, target, change):
    with np.load(work / source) as data:
        arrays = dict(data)
    change(arrays)
    np.savez(work / target, **arrays)


def newer_version(arrays):
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] += 1
    arrays["meta"] = np.array(json.dumps(meta))


BAD = {
    # id: (arguments, words the one-line message must contain)
    "truncated-npz": (["train", "--data", "truncated.npz"], ["truncated.npz"]),
    "truncated-mat": (["train", "--data", "truncated.mat"], ["truncated.mat"]),
    "npz-that-is-csv": (["train", "--data", "csv-named.npz"], ["csv-named.npz", "not"]),
    "mat-that-is-text": (["evaluate", "model.npz", "--data", "text-named.mat"], ["text-named.mat"]),
    "mat-without-X": (["train", "--data", "no-x.mat"], ["no variable X"]),
    "mat-without-y": (["cost", "--weights", "model.npz", "--data", "no-y.mat"], ["no variable y"]),
    "X-1d": (["train", "--data", "x-1d.npz"], ["2-D"]),
    "X-3d": (["evaluate", "model.npz", "--data", "x-3d.npz"], ["2-D"]),
    "lengths-differ": (["train", "--data", "lengths.npz"], ["1797 examples", "1796 labels"]),
    "nan": (["train", "--data", "nan.npz"], ["NaN"]),
    "inf": (["predict", "model.npz", "inf.npz"], ["infinite"]),
    "non-numeric-csv": (["train", "--data", "cells.csv"], ["non-numeric"]),
    "single-class": (["train", "--data", "one-class.npz"], ["two classes"]),
    "zero-examples": (["train", "--data", "empty.npz"], ["no examples"]),
    "unknown-labels": (["evaluate", "model.npz", "--data", "unknown-labels.npz"], ["10", "11"]),
    "features-do-not-fit": (["predict", "model.npz", "features-400.npz"], ["64", "400"]),
    "image-for-non-square-model": (["predict", "m6.npz", "digit.png"], ["6"]),
    "thetas-do-not-chain": (["cost", "--weights", "no-chain.mat"], ["Theta2", "Theta1"]),
    "octave-weights-do-not-fit": (["cost", "--weights", EX4WEIGHTS, "--data", "good.npz"], ["401", "64"]),
    "newer-format": (["evaluate", "newer.npz", "--data", "digits8"], ["newer"]),
    "tampered": (["evaluate", "tampered.npz", "--data", "digits8"], ["altered"]),
    "truncated-model": (["show", "truncated-model.npz"], ["truncated-model.npz"]),
    "object-arrays": (["train", "--data", "pickled.npz"], ["unpickling", "refused"]),
    "pickle-file-as-model": (["evaluate", "raw-pickle.npz", "--data", "digits8"], ["raw-pickle.npz", "not"]),
    "negative-lambda": (["train", "--data", "nosuch.csv", "--lambda", "-1"], ["lambda"]),
    "zero-hidden-units": (["train", "--data", "nosuch.csv", "--hidden", "0"], ["hidden"]),
    "max-iter-0": (["train", "--data", "nosuch.csv", "--max-iter", "0"], ["max_iter"]),
    "unknown-optimizer": (["train", "--data", "nosuch.csv", "--optimizer", "bfgs"], ["optimizer"]),
    "existing-out": (["train", "--data", "digits8", "--out", "existing.npz"], ["existing.npz", "--force"]),
    "crafted-array-name": (["evaluate", "odd-name.npz", "--data", "digits8"], ["thetax"]),
    "crafted-int-weights": (["evaluate", "int-weights.npz", "--data", "digits8"], ["float"]),
    "crafted-3d-weights": (["show", "3d-weights.npz"], ["3-D"]),
    "crafted-nan-weights": (["predict", "nan-weights.npz", "good.npz"], ["NaN"]),
    "crafted-history": (["evaluate", "list-history.npz", "--data", "digits8"], ["history"]),
    "crafted-no-network": (["evaluate", "no-network.npz", "--data", "digits8"], ["activation and output"]),
    "crafted-unknown-activation": (["predict", "unknown-activation.npz", "good.npz"], ["swish"]),
    "octave-text-weights": (["cost", "--weights", "octave-text.mat"], ["Theta1", "numeric"]),
    "octave-nan-weights": (["cost", "--weights", "octave-nan.mat"], ["Theta1", "NaN"]),
    "decompression-bomb": (["predict", "model.npz", "bomb.png"], ["bomb.png"]),
    "unknown-dtype": (["train", "--data", "digits8", "--dtype", "foo"], ["dtype"]),
    "huge-hidden-layer": (["train", "--data", "digits8", "--hidden", "1000000000"], ["GiB"]),
    "negative-seed": (["train", "--data", "digits8", "--seed", "-1"], ["--seed"]),
    "out-is-a-directory": (["train", "--data", "digits8", "--out", "a-directory"], ["a-directory", "directory"]),
    "out-under-a-file": (["train", "--data", "digits8", "--out", "a-file/m.npz"], ["a-file", "not a directory"]),
    "report-is-a-file": (["train", "--data", "digits8", "--report", "a-file"], ["a-file", "directory"]),
    # Special files are replaced by nothing, --force or not.
    "out-is-a-fifo": (["train", "--data", "digits8", "--out", "a-fifo", "--force"], ["a-fifo", "regular files only"]),
    "checkpoint-is-a-fifo": (
        ["train", "--data", "digits8", "--checkpoint", "a-fifo", "--force"],
        ["--checkpoint", "regular files only"],
    ),
    "report-file-is-a-fifo": (
        ["train", "--data", "digits8", "--report", "rep", "--force"],
        ["digits.png", "regular files only"],
    ),
    "report-verb-file-is-a-fifo": (["report", "model.npz", "--data", "digits8", "rep", "--force"], ["digits.png"]),
    "show-out-is-a-fifo": (["show", "--data", "digits8", "--out", "a-fifo", "--force"], ["regular files only"]),
    "out-name-too-long": (["train", "--data", "digits8", "--out", "m" * 300 + ".npz"], ["too long"]),
    # Options and inputs are checked before the outputs: the message is about them, not --force.
    "data-before-existing-out": (["train", "--data", "nope.csv", "--out", "existing.npz"], ["nope.csv", "no such"]),
    "option-before-existing-out": (
        ["train", "--data", "digits8", "--checkpoint-every", "-1", "--out", "existing.npz"],
        ["--checkpoint-every"],
    ),
    "resume-before-existing-out": (["train", "--resume", "nope.ckpt", "--out", "existing.npz"], ["nope.ckpt"]),
    # Resuming: every output is checked, and a lower --max-iter is refused.
    "resume-onto-an-existing-checkpoint": (
        ["train", "--resume", "run.ckpt", "--checkpoint", "existing.npz", "--out", "new.npz"],
        ["existing.npz", "--force"],
    ),
    "resume-with-lower-max-iter": (["train", "--resume", "run.ckpt", "--max-iter", "2", "--out", "new.npz"], ["3"]),
    # Mini-batch settings and framing.
    "batch-size-0": (["train", "--data", "digits8", "--optimizer", "sgd", "--batch-size", "0"], ["--batch-size"]),
    "learning-rate-negative": (
        ["train", "--data", "digits8", "--optimizer", "adam", "--learning-rate", "-0.1"],
        ["--learning-rate"],
    ),
    "validation-fraction-1": (
        ["train", "--data", "digits8", "--optimizer", "adam", "--validation-fraction", "1"],
        ["--validation-fraction"],
    ),
    "n-iter-no-change-0": (
        ["train", "--data", "digits8", "--optimizer", "sgd", "--n-iter-no-change", "0"],
        ["--n-iter-no-change"],
    ),
    "mini-batch-option-for-cg": (["train", "--data", "digits8", "--batch-size", "50"], ["--batch-size", "cg"]),
    "framing-unknown": (["train", "--data", "digits8", "--framing", "square"], ["--framing"]),
    "framing-contradicts-dataset": (["train", "--data", "digits8", "--framing", "mnist"], ["contradicts", "fill"]),
    # argparse's own errors name the verb too.
    "unknown-train-option": (["train", "--bogus"], ["nnlearn train: error:", "--bogus"]),
    "not-a-number": (["train", "--batch-size", "many"], ["nnlearn train: error:", "--batch-size"]),
}


def snapshot(folder):
    """Every entry under ``folder``: a file's checksum, a folder's entries, a special file's kind."""
    entries = {}
    for p in folder.iterdir():
        mode = os.lstat(p).st_mode
        if stat.S_ISREG(mode):
            entries[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif stat.S_ISDIR(mode):
            entries[p.name] = snapshot(p)
        else:
            entries[p.name] = stat.S_IFMT(mode)  # never read: a FIFO would block
    return entries


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from threadpoolctl import threadpool_limits

    work = tmp_path_factory.mktemp("robust")
    with threadpool_limits(1):
        write_inputs(work)
    return work


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_exit_2_and_changes_nothing(case, work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    before = snapshot(work)
    args, words = BAD[case]
    result = run_cli(capsys, *args)
    assert_one_line_error(result, *words)
    assert snapshot(work) == before  # nothing written, changed or removed
