"""``nnlearn tune`` and :mod:`nnlearn.reporting._tuning`: the search, its check, its outputs and its errors.

The searches here run on scikit-learn's 8x8 digits (``digits8``) with grids of two to four
candidates and few iterations, in this process (``n_jobs=1``) unless a test is about the
worker processes.
"""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score

import nnlearn
from nnlearn import reporting as tuning
from nnlearn.errors import ParameterError
from nnlearn.estimator import NeuralNetClassifier
from nnlearn.model._model import load_model

from .helpers import ENV, SCRIPT, assert_one_line_error, deadline, nnlearn_script, ok_json, run_cli

psutil = pytest.importorskip("psutil")

SMALL = ["--lambda", "1", "--hidden", "10,30", "--activation", "relu", "--output", "softmax"]
QUICK = [*SMALL, "--cv", "3", "--max-iter", "40", "--n-jobs", "1"]
GRID = {"lam": [1.0], "hidden_layer_sizes": [(10,), (30,)], "activation": ["relu"], "output": ["softmax"]}


@pytest.fixture(scope="module")
def digits8():
    X, y = nnlearn.load_digits8()
    return nnlearn.split(X, y, test_size=0.2, seed=0)


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    return lambda *args: run_cli(capsys, *args)


# ----------------------------------------------------------------------- the grid


def test_make_grid_takes_the_defaults_and_replaces_what_is_given():
    assert tuning.make_grid() == tuning.DEFAULT_GRID
    grid = tuning.make_grid(lam=[3, 0.1, 3], hidden_layer_sizes=[25, (50, 25)])
    assert grid["lam"] == (3.0, 0.1)  # order kept, the repeat dropped
    assert grid["hidden_layer_sizes"] == ((25,), (50, 25))
    assert grid["activation"] == tuning.DEFAULT_GRID["activation"]


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"lam": [1, -1]}, "lambda"),
        ({"lam": []}, "at least one value of lam"),
        ({"hidden_layer_sizes": [(25, 0)]}, "hidden layer sizes"),
        ({"activation": ["softsign"]}, "unknown activation 'softsign'"),
        ({"output": ["relu"]}, "unknown output 'relu'"),
    ],
)
def test_make_grid_refuses_a_bad_value_naming_it(given, words):
    with pytest.raises(ParameterError, match=words):
        tuning.make_grid(**given)


def test_the_default_grid_holds_the_course_settings():
    # The check compares the choice with these; in the default grid the search can pick them too.
    grid = tuning.DEFAULT_GRID
    for key, value in tuning.COURSE_SETTINGS.items():
        assert value in grid[key], key


# --------------------------------------------------------------------- the search


def test_search_scores_each_candidate_by_stratified_cross_validation(digits8):
    X, _, y, _ = digits8
    seen = []
    result = tuning.search(
        X,
        y,
        GRID,
        cv=3,
        settings=tuning.SearchSettings(max_iter=40, n_jobs=1),
        progress=lambda i, total, c: seen.append((i, total, c.params)),
    )
    assert [c.params["hidden_layer_sizes"] for c in result.candidates] == [(10,), (30,)]
    assert seen == [(1, 2, result.candidates[0].params), (2, 2, result.candidates[1].params)]
    # The same folds and fits by hand give the same fold accuracies.
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    for candidate in result.candidates:
        estimator = NeuralNetClassifier(max_iter=40, random_state=0, **candidate.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 40 iterations do not converge
            expected = cross_val_score(estimator, X, y, cv=folds)
        np.testing.assert_allclose(candidate.scores, expected)
        assert candidate.train_accuracy > candidate.mean  # scored on the training folds too
    assert result.best is max(result.candidates, key=lambda c: c.mean)
    assert sorted(c.rank for c in result.candidates) == [1, 2]


def test_search_refuses_more_folds_than_a_class_has_examples(digits8):
    X, _, y, _ = digits8
    with pytest.raises(ParameterError, match="200 folds need at least 200 examples of every class"):
        tuning.search(X, y, GRID, cv=200, settings=tuning.SearchSettings(n_jobs=1))
    with pytest.raises(ParameterError, match="n_jobs"):
        tuning.search(X, y, GRID, cv=3, settings=tuning.SearchSettings(n_jobs=0))


@pytest.mark.slow
def test_worker_processes_give_the_scores_of_one_process(digits8):
    X, _, y, _ = digits8
    one = tuning.search(X, y, GRID, cv=3, settings=tuning.SearchSettings(max_iter=60, n_jobs=1))
    two = tuning.search(X, y, GRID, cv=3, settings=tuning.SearchSettings(max_iter=60, n_jobs=2))
    assert two.n_jobs == 2 and two.threads_per_job == max(1, tuning.default_jobs() // 2)
    assert [c.scores for c in two.candidates] == [c.scores for c in one.candidates]


@pytest.mark.slow
def test_the_chosen_settings_beat_the_course_settings_on_folds_not_chosen_on(digits8):
    # The check, as nested cross-validation on the 1437 training digits: the
    # search chooses inside each outer fold's other folds; both settings are scored on it.
    X, _, y, _ = digits8
    grid = {"lam": [0.1, 1.0], "hidden_layer_sizes": [(25,), (100,)], "activation": ["relu"], "output": ["softmax"]}
    check = tuning.nested_check(X, y, grid, outer=3, cv=3, settings=tuning.SearchSettings(max_iter=200, n_jobs=1))
    assert len(check.chosen) == len(check.chosen_scores) == len(check.course_scores) == 3
    assert np.mean(check.chosen_scores) > np.mean(check.course_scores)
    assert check.wins >= 2


def test_the_validation_curve_has_a_line_per_network_over_lambda():
    candidates = [
        tuning.Candidate({"lam": lam, "hidden_layer_sizes": (h,), "activation": "relu", "output": "softmax"}, s, 1, 0.1)
        for lam, h, s in [
            (0.1, 25, (0.9, 0.92)),
            (1.0, 25, (0.95, 0.93)),
            (0.1, 100, (0.97, 0.97)),
            (1.0, 100, (0.96,) * 2),
        ]
    ]
    ranks = [4, 3, 1, 2]
    candidates = [tuning.Candidate(c.params, c.scores, 1, 0.1, r) for c, r in zip(candidates, ranks, strict=True)]
    fig = tuning.plot_search(tuning.SearchResult(candidates, 2, 1, 1, 0.0))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"25 relu/softmax", "100 relu/softmax", "chosen"}
    np.testing.assert_allclose(lines["25 relu/softmax"].get_xdata(), [0.1, 1.0])
    np.testing.assert_allclose(lines["25 relu/softmax"].get_ydata(), [91.0, 94.0])
    np.testing.assert_allclose(lines["chosen"].get_xydata(), [[0.1, 97.0]])
    assert ax.get_xscale() == "log"
    assert "lambda 0.1, 100 relu/softmax" in ax.get_title()


def test_many_networks_get_error_bars_side_by_side_instead_of_bands():
    kinds = [(h, a) for h in (25, 100) for a in ("sigmoid", "relu")]
    candidates = [
        tuning.Candidate(
            {"lam": lam, "hidden_layer_sizes": (h,), "activation": a, "output": "softmax"}, (0.9, 0.95), 1, 0.1, 1
        )
        for lam in (0.1, 1.0)
        for h, a in kinds
    ]
    ax = tuning.plot_search(tuning.SearchResult(candidates, 2, 1, 1, 0.0)).axes[0]
    assert not [
        c for c in ax.collections if type(c).__name__ == "FillBetweenPolyCollection" or "Poly" in type(c).__name__
    ]
    assert len(ax.containers) == 4  # one set of error bars per network
    starts = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_label() != "chosen")
    assert len(set(starts)) == 4 and 0.08 < starts[0] < 0.1 < starts[-1] < 0.12  # nudged apart, near 0.1


# ------------------------------------------------------------------ the command line


def test_tune_saves_the_best_model_and_the_command_that_retrains_it(cli, tmp_path, digits8):
    run = cli("tune", "--data", "digits8", *QUICK, "--json")
    result = ok_json(run)  # one JSON document on stdout
    assert run.stderr == ""  # no line per candidate with --json
    assert sorted(c["hidden_layer_sizes"] for c in result["candidates"]) == [[10], [30]]
    ranks = [c["rank"] for c in result["candidates"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    best = result["best"]
    assert best == result["candidates"][0] and result["cv_accuracy"] == best["mean_accuracy"]
    assert (result["m_train"], result["m_test"], result["folds"]) == (1437, 360, 3)
    # The saved model is the chosen settings trained on the training part, scored on the rest.
    model = load_model(tmp_path / "nnlearn-tuned.npz")
    assert model.layer_sizes == (64, *best["hidden_layer_sizes"], 10)
    assert (model.network.activation, model.network.output, model.lam) == ("relu", "softmax", best["lam"])
    _, X_test, _, y_test = digits8
    assert result["test_accuracy"] == pytest.approx(model.score(X_test, y_test))
    assert model.history["data"] == "digits8" and model.history["test_size"] == 0.2
    # The printed command trains the very same weights.
    words = shlex.split(result["command"])
    assert words[:2] == ["nnlearn", "train"]
    ok_json(cli(*words[1:], "--out", "again.npz", "--json", "--quiet"))
    again = load_model(tmp_path / "again.npz")
    for a, b in zip(model.thetas, again.thetas, strict=True):
        np.testing.assert_array_equal(a, b)
    with Image.open(tmp_path / "nnlearn-tune.png") as picture:
        assert picture.format == "PNG" and picture.width > 300


def test_the_retrain_command_parses_back_to_the_same_settings():
    from argparse import Namespace

    from nnlearn.cli import build_parser
    from nnlearn.cli._tune_output import retrain_command

    args = Namespace(data="my data.csv", optimizer="lbfgs", max_iter=300, test_size=0.15, seed=3, dtype="float32")
    params = {"lam": 0.123456789, "hidden_layer_sizes": (50, 25), "activation": "tanh", "output": "softmax"}
    words = shlex.split(retrain_command(args, params))
    parsed = build_parser().parse_args(words[1:])
    assert parsed.verb == "train"
    assert (parsed.data, parsed.hidden_layer_sizes, parsed.lam, parsed.activation, parsed.output) == (
        "my data.csv",
        [50, 25],
        0.123456789,
        "tanh",
        "softmax",
    )
    assert (parsed.optimizer, parsed.max_iter, parsed.test_size, parsed.seed, parsed.dtype) == (
        "lbfgs",
        300,
        0.15,
        3,
        "float32",
    )


def test_tune_prints_a_table_of_the_candidates_and_a_line_per_candidate(cli):
    result = cli("tune", "--data", "digits8", *QUICK)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("nnlearn tune: [")]
    assert len(progress) == 2 and progress[0].startswith("nnlearn tune: [1/2]")
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith("relu/softmax")]
    assert len(rows) == 2 and rows[0].split()[0] == "1"
    assert "retrain     nnlearn train --data digits8 --hidden" in result.stdout


@pytest.mark.slow
def test_tune_check_reports_the_nested_cross_validation(cli):
    result = ok_json(cli("tune", "--data", "digits8", *QUICK, "--check", "2", "--json"))
    check = result["check"]
    assert check["outer_folds"] == 2 and len(check["chosen_accuracies"]) == len(check["course_accuracies"]) == 2
    assert check["chosen_mean"] == pytest.approx(np.mean(check["chosen_accuracies"]))
    assert check["chosen_better"] == sum(
        a > b for a, b in zip(check["chosen_accuracies"], check["course_accuracies"], strict=True)
    )


def test_tune_refuses_to_overwrite_without_force(cli, tmp_path):
    (tmp_path / "nnlearn-tuned.npz").write_bytes(b"precious")
    assert_one_line_error(cli("tune", "--data", "digits8", *QUICK), "nnlearn-tuned.npz", "--force")
    assert (tmp_path / "nnlearn-tuned.npz").read_bytes() == b"precious"
    (tmp_path / "c.png").write_bytes(b"precious")
    result = cli("tune", "--data", "digits8", *QUICK, "--out", "other.npz", "--plot", "c.png")
    assert_one_line_error(result, "c.png", "--force")
    assert (tmp_path / "c.png").read_bytes() == b"precious"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.png", "nnlearn-tuned.npz"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--lambda", "1,x"], ["--lambda", "'x' is not a number"]),
        (["--lambda", "1,-3"], ["--lambda", "lambda must be a finite number >= 0"]),
        (["--lambda", "1,,3"], ["--lambda", "none empty"]),
        (["--hidden", "25,0"], ["--hidden", "positive integers"]),
        (["--hidden", "25-x"], ["--hidden", "'x' is not a size"]),
        (["--activation", "relu,softsign"], ["--activation", "unknown activation 'softsign'"]),
        (["--output", "tanh"], ["--output", "unknown output 'tanh'"]),
        (["--optimizer", "newton"], ["--optimizer", "newton"]),
        (["--max-iter", "0"], ["--max-iter", ">= 1"]),
        (["--cv", "1"], ["--cv", ">= 2"]),
        (["--cv", "300"], ["300 folds", "of every class"]),
        (["--check", "1"], ["--check", ">= 2"]),
        (["--n-jobs", "0"], ["--n-jobs", ">= 1"]),
        (["--test-size", "1"], ["--test-size", "[0, 1)"]),
        (["--seed", "-1"], ["--seed"]),
        (["--dtype", "float16"], ["--dtype"]),
        (["--plot", "curve.xyz"], ["--plot", ".xyz"]),
        (["--plot", "same.png", "--out", "same.png"], ["same file"]),
        (["--data", "nope"], ["unknown dataset 'nope'"]),
        (["--lambda"], ["--lambda", "expected one argument"]),
    ],
)
def test_tune_reports_a_bad_option_in_one_line(cli, tmp_path, args, words):
    result = cli("tune", "--data", "digits8", *args)
    assert_one_line_error(result, *words)
    assert not list(tmp_path.iterdir())  # nothing written


def test_tune_help_shows_examples(cli):
    result = cli("tune", "--help")
    assert result.returncode == 0
    assert "nnlearn tune --data digits8 --lambda 0.3,1,3" in result.stdout
    for option in ("--lambda", "--hidden", "--activation", "--output", "--cv", "--check", "--n-jobs", "--plot"):
        assert option in result.stdout


def test_the_command_line_imports_no_model_selection_until_tune_runs():
    # `nnlearn --help` and every other verb build tune's parser, which shows the default grid.
    import subprocess
    import sys

    code = "import sys; from nnlearn.cli import build_parser; build_parser(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_tune_refuses_data_that_train_refuses_before_any_work(cli, tmp_path):
    X = np.random.default_rng(0).random((55, 4))
    np.savez(tmp_path / "one.npz", X=X, y=np.zeros(55, int))
    np.savez(tmp_path / "rare.npz", X=X, y=np.repeat([0, 1], [50, 5]))
    assert_one_line_error(cli("tune", "--data", "one.npz", *QUICK), "training data: need at least two classes, got [0]")
    # 5 ones: enough for 5 folds, not for 5 folds inside the other folds of 3 outer ones.
    result = cli("tune", "--data", "rare.npz", *QUICK, "--test-size", "0", "--cv", "5", "--check", "3")
    assert_one_line_error(result, "--check 3 with --cv 5", "outer fold 1 of 3 have 3 of their rarest")
    result = cli("tune", "--data", "digits8", *QUICK, "--hidden", "10,10000000000")
    assert_one_line_error(result, "64-10000000000-10 network", "GiB")
    result = cli("tune", "--data", "rare.npz", *QUICK, "--out", "rare.npz", "--force")
    assert_one_line_error(result, "--out rare.npz is also --data", "never writes over its own input")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one.npz", "rare.npz"]


# ---------------------------------------------------------------- stop signals

STOPPED = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
# Four candidates: with --n-jobs 2 the first two are scored while the others wait.
FOUR = ["--lambda", "1,3", "--hidden", "10,20", "--activation", "relu", "--output", "softmax", "--cv", "2"]


def interrupted_line(name, done, of):
    by = "" if name == "SIGINT" else f" by {name}"
    return f"nnlearn tune: interrupted{by} after {done} of {of} candidates; nothing was saved"


@pytest.mark.parametrize("name", ["SIGHUP", "SIGTERM"])
def test_a_stop_signal_ends_tune_with_its_status_and_how_far_it_came(cli, tmp_path, monkeypatch, name):
    # In this process, one fit at a time: the signal comes as the first candidate is reported.
    import nnlearn.cli.tune

    def say_then_signal(message):
        print(message, file=sys.stderr)
        os.kill(os.getpid(), getattr(signal, name))

    monkeypatch.setattr(nnlearn.cli.tune, "say", say_then_signal)
    result = cli("tune", "--data", "digits8", *FOUR, "--max-iter", "20", "--n-jobs", "1")
    assert result.returncode == STOPPED[name] and result.stdout == ""
    assert result.stderr.splitlines()[-1] == interrupted_line(name, 1, 4)
    assert not list(tmp_path.iterdir())


def session_processes(session):
    """The live processes of the session ``session`` began (those reparented included)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def workers(session, ready=False):
    """The joblib (loky) worker processes of a session; ``ready``: those that have started
    as tune starts them, ignoring SIGINT (Linux's /proc shows it)."""
    found = []
    for process in session_processes(session):
        with contextlib.suppress(psutil.Error, OSError):
            worker = "--process-name LokyProcess" in " ".join(process.cmdline())
            if worker and (not ready or ignores_sigint(process.pid)):
                found.append(process)
    return found


def ignores_sigint(pid):
    with open(f"/proc/{pid}/status") as status:
        mask = next(line for line in status if line.startswith("SigIgn:")).split()[1]
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
@pytest.mark.parametrize(
    ("name", "whole_group"),
    [
        # kill PID, as soon as the workers exist: they hear nothing, tune must end them.
        ("SIGTERM", False),
        # Ctrl-C reaches the whole group, once the workers ignore it: before, in their
        # Python's start, it would interrupt their imports, and each print a traceback.
        ("SIGINT", True),
    ],
)
def test_a_stop_signal_ends_the_worker_processes_too(tmp_path, name, whole_group):
    # No process of tune's session is left: its workers ended, and so its resource
    # trackers, which end when no process holds their pipe any more.
    process = subprocess.Popen(
        [str(SCRIPT), "tune", "--data", "digits8", *FOUR, "--max-iter", "300", "--n-jobs", "2"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        with deadline(60):
            while len(workers(process.pid, ready=whole_group)) < 2 and process.poll() is None:
                time.sleep(0.02)
        (os.killpg if whole_group else os.kill)(process.pid, getattr(signal, name))
        out, err = process.communicate(timeout=30)
        assert process.returncode == STOPPED[name] and out == "" and "Traceback" not in err, err
        # Two candidates may have been scored on a fast machine.
        assert err.splitlines()[-1] in (interrupted_line(name, 0, 4), interrupted_line(name, 2, 4)), err
        left = session_processes(process.pid)
        until = time.monotonic() + 5
        while left and time.monotonic() < until:
            time.sleep(0.1)
            left = session_processes(process.pid)
        assert not left, [p.cmdline() for p in left]
        assert not list(tmp_path.iterdir())
    finally:
        for leftover in session_processes(process.pid):
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        process.kill()
        process.communicate()


@pytest.mark.slow
def test_the_console_script_runs_tune(tmp_path):
    result = nnlearn_script("tune", "--data", "digits8", *QUICK, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet: no line per candidate
    assert "chosen      lambda 1" in result.stdout
    assert (tmp_path / "nnlearn-tuned.npz").is_file() and (tmp_path / "nnlearn-tune.png").is_file()
