"""The ``nnlearn`` command line.

Most cases run :func:`nnlearn.cli.main` in this process (``run_cli``), which is what the
console script calls; a few run the installed script in a subprocess, for what only a
real process shows: the script and ``python -m nnlearn`` exist, a progress bar and an
error reach a terminal, and the exit status reaches the shell.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nnlearn

from .helpers import (
    ENV,
    EX4WEIGHTS,
    SCRIPT,
    VERBS,
    assert_one_line_error,
    nnlearn_script,
    ok_json,
    run_cli,
)


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args)``: the command line in-process; figures never open a window."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return lambda *args: run_cli(capsys, *args)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory with malformed files and a small model trained in-process."""
    from threadpoolctl import threadpool_limits

    work = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for suffix in ("mat", "npz", "csv", "png"):
        (work / f"bad.{suffix}").write_bytes(rng.bytes(512))
    X, y = nnlearn.load_digits20()
    X_train, X_test, y_train, y_test = nnlearn.split(X, y, test_size=0.2, seed=0)
    with threadpool_limits(1):
        model = nnlearn.train(X_train, y_train, optimizer="lbfgs", max_iter=150)
    model.save(work / "small.npz")
    np.savez(work / "few.npz", X=X_test[:5], y=y_test[:5])
    return work, X_test, y_test, model


@pytest.fixture
def in_work(work, monkeypatch):
    monkeypatch.chdir(work[0])
    return work


# ------------------------------------------------------- the script, in a subprocess


def test_script_is_installed_next_to_python():
    assert SCRIPT.exists(), f"no console script at {SCRIPT}; pip install -e ."


def test_script_help_lists_every_verb(tmp_path):
    result = nnlearn_script("--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert all(verb in result.stdout for verb in VERBS) and "--version" in result.stdout


def test_python_m_nnlearn(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nnlearn", "--version"], capture_output=True, text=True, env=ENV, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout == f"nnlearn {nnlearn.__version__}\n"


@pytest.mark.slow
def test_script_trains_with_a_progress_bar(tmp_path):
    result = nnlearn_script(
        "train", "--data", "digits8", "--optimizer", "lbfgs", "--max-iter", "5", "--out", "s.npz", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "training" in result.stderr and "cost=" in result.stderr  # tqdm's bar, on stderr
    assert "model saved to   s.npz" in result.stdout and (tmp_path / "s.npz").exists()


def test_script_error_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(nnlearn_script("cost", "--weights", "nosuch.mat", cwd=tmp_path), "no such file")
    assert_one_line_error(nnlearn_script("fit", cwd=tmp_path), "invalid choice")


# ------------------------------------------------------------------ help, --version


def test_each_verb_is_a_module_with_its_parts():
    from nnlearn import cli

    assert tuple(cli.verb_name(module) for module in cli.VERBS) == VERBS
    for module in cli.VERBS:
        assert isinstance(module.SUMMARY, str) and "\n" not in module.SUMMARY
        assert f"nnlearn {cli.verb_name(module)}" in module.EXAMPLES
        assert callable(module.add_arguments) and callable(module.run)


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb, cli):
    result = cli(verb, "--help")
    assert result.returncode == 0
    assert "example:" in result.stdout and f"nnlearn {verb}" in result.stdout.split("example:")[1]
    assert "--json" in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0 and result.stdout == f"nnlearn {nnlearn.__version__}\n"
    assert re.fullmatch(r"nnlearn \d+\.\d+\.\d+\n", result.stdout)


def test_train_help_gives_the_library_defaults(cli):
    from nnlearn.training._settings import DEFAULTS

    text = " ".join(cli("train", "--help").stdout.split())
    assert f"(default: {DEFAULTS.optimizer})" in text and f"(default: {DEFAULTS.max_iter})" in text
    assert f"(default: {DEFAULTS.activation}, the course's)" in text and "(default: 0.2)" in text


# ------------------------------------------------------------------------- bad input

BAD_INPUT = {
    # id: (arguments, a word the one-line message must contain)
    "train-missing-data": (["train", "--data", "nosuch.csv"], "no such file"),
    "train-malformed-mat": (["train", "--data", "bad.mat"], "bad.mat"),
    "train-malformed-npz": (["train", "--data", "bad.npz"], "bad.npz"),
    "train-malformed-csv": (["train", "--data", "bad.csv"], "bad.csv"),
    "train-unknown-dataset": (["train", "--data", "digits99"], "unknown dataset"),
    "train-negative-lambda": (["train", "--lambda", "-1"], "lambda"),
    "train-zero-hidden": (["train", "--hidden", "25", "0"], "hidden"),
    "train-max-iter-0": (["train", "--max-iter", "0"], "max_iter"),
    "train-unknown-optimizer": (["train", "--optimizer", "newton"], "optimizer"),
    "train-unknown-activation": (["train", "--activation", "softplus"], "activation"),
    "train-unknown-output": (["train", "--output", "linear"], "output"),
    "train-test-size": (["train", "--test-size", "1.5"], "--test-size"),
    "train-dtype": (["train", "--dtype", "float16"], "dtype"),
    "train-not-a-number": (["train", "--lambda", "one"], "--lambda"),
    "evaluate-missing-model": (["evaluate", "nosuch.npz"], "no such file"),
    "evaluate-malformed-model-npz": (["evaluate", "bad.npz"], "bad.npz"),
    "evaluate-malformed-model-mat": (["evaluate", "bad.mat"], "bad.mat"),
    "evaluate-model-not-npz-or-mat": (["evaluate", "bad.csv"], ".npz"),
    "evaluate-missing-data": (["evaluate", "small.npz", "--data", "nosuch.npz"], "no such file"),
    "evaluate-unknown-dataset": (["evaluate", "small.npz", "--data", "digits99"], "unknown dataset"),
    "evaluate-weights-do-not-fit": (["evaluate", EX4WEIGHTS, "--data", "digits8"], "25x401"),
    "predict-missing-model": (["predict", "nosuch.npz", "few.npz"], "no such file"),
    "predict-missing-input": (["predict", "small.npz", "nosuch.png"], "no such file"),
    "predict-malformed-image": (["predict", "small.npz", "bad.png"], "bad.png"),
    "predict-malformed-data": (["predict", "small.npz", "bad.csv"], "bad.csv"),
    "predict-unknown-dataset": (["predict", "small.npz", "digits9"], "unknown dataset"),
    "predict-weights-do-not-fit": (["predict", EX4WEIGHTS, "digits8"], "1797x64"),
    "cost-missing-weights": (["cost", "--weights", "nosuch.mat"], "no such file"),
    "cost-malformed-weights": (["cost", "--weights", "bad.mat"], "bad.mat"),
    "cost-malformed-data": (["cost", "--weights", EX4WEIGHTS, "--data", "bad.npz"], "bad.npz"),
    "cost-unknown-dataset": (["cost", "--weights", EX4WEIGHTS, "--data", "digits"], "unknown dataset"),
    "cost-weights-do-not-fit": (["cost", "--weights", EX4WEIGHTS, "--data", "digits8"], "25x401"),
    "cost-pretrained-do-not-fit": (["cost", "--data", "digits8"], "pretrained ex4weights.mat"),
    "cost-negative-lambda": (["cost", "--lambda", "-0.5"], "lambda"),
    "gradcheck-negative-lambda": (["gradcheck", "--lambda", "-3"], "lambda"),
    "gradcheck-zero-hidden": (["gradcheck", "--hidden", "0"], "hidden"),
    "gradcheck-unknown-activation": (["gradcheck", "--activation", "step"], "activation"),
    "reproduce-unknown-dataset": (["reproduce", "--data", "ex4data1"], "unknown dataset"),
    "reproduce-missing-weights": (["reproduce", "--weights", "nosuch.mat"], "no such file"),
    "reproduce-malformed-data": (["reproduce", "--data", "bad.mat"], "bad.mat"),
    "reproduce-weights-do-not-fit": (["reproduce", "--weights", EX4WEIGHTS, "--data", "digits8"], "1797x64"),
    "reproduce-pretrained-do-not-fit": (["reproduce", "--data", "digits8"], "1797x64"),
    "reproduce-max-iter-0": (["reproduce", "--max-iter", "0"], "max_iter"),
    "report-missing-model": (["report", "nosuch.npz", "out"], "no such file"),
    "report-unknown-dataset": (["report", "small.npz", "--data", "digit20", "out"], "unknown dataset"),
    "report-weights-do-not-fit": (["report", EX4WEIGHTS, "--data", "digits8", "out"], "25x401"),
    "show-unknown-dataset": (["show", "--data", "digits2"], "unknown dataset"),
    "show-missing-model": (["show", "nosuch.npz"], "no such file"),
    "show-malformed-model": (["show", "bad.npz"], "bad.npz"),
    "unknown-verb": (["fit"], "invalid choice"),
    "unknown-option": (["cost", "--weigths", "x.mat"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(case, cli, in_work):
    args, word = BAD_INPUT[case]
    assert_one_line_error(cli(*args), word)
    assert not (in_work[0] / "nnlearn-model.npz").exists()


def test_weights_that_do_not_fit_name_both_shapes(cli, in_work):
    line = cli("cost", "--weights", EX4WEIGHTS, "--data", "digits8").stderr
    assert "Theta1 25x401" in line and "1797x64" in line


# ---------------------------------------------------------------------------- train


def accuracies(text):
    found = dict(re.findall(r"(train|test) accuracy\s+([0-9.]+)%", text))
    return float(found["train"]), float(found.get("test", "nan"))


@pytest.mark.slow
def test_train_default_is_the_course_network_on_a_split(cli, in_tmp):
    result = cli("train")
    assert result.returncode == 0, result.stderr
    train, test = accuracies(result.stdout)
    assert train >= 99.0 and test >= 91.0, result.stdout
    assert "400-25-10" in result.stdout and "4000 training / 1000 test" in result.stdout
    assert re.search(r"final cost\s+0\.\d+", result.stdout) and re.search(r"time\s+[0-9.]+ s", result.stdout)
    assert "training" in result.stderr and "cost=" in result.stderr  # the progress bar
    model = nnlearn.load_model(in_tmp / "nnlearn-model.npz")
    assert model.layer_sizes == (400, 25, 10) and model.lam == 1.0
    assert model.history["optimizer"] == "cg" and model.history["n_iter"] == 400

    again = cli("train")  # refused at once, before training
    assert again.returncode == 2 and "--force" in again.stderr and "training" not in again.stderr
    evaluated = ok_json(cli("evaluate", "nnlearn-model.npz", "--json"))
    assert evaluated["m"] == 1000 and abs(100 * evaluated["accuracy"] - test) < 0.01


@pytest.mark.slow
def test_train_on_everything(cli, in_tmp):
    run = ok_json(cli("train", "--test-size", "0", "--json"))
    assert run["train_accuracy"] >= 0.995 and run["test_accuracy"] is None
    assert run["m_train"] == 5000 and run["settings"]["optimizer"] == "cg"


def test_train_json_is_one_object_and_quiet(cli, in_tmp):
    run = ok_json(
        cli(
            "train",
            "--data",
            "digits8",
            "--hidden",
            "16",
            "8",
            "--max-iter",
            "100",
            "--optimizer",
            "lbfgs",
            "--dtype",
            "float32",
            "--out",
            "m/d8.npz",
            "--json",
        )
    )
    assert set(run) >= {"final_cost", "train_accuracy", "test_accuracy", "seconds", "model", "settings", "n_iter"}
    assert run["settings"]["hidden"] == [16, 8] and run["settings"]["dtype"] == "float32"
    # Measured: 95.83% of the 360 held-out digits (99.23% of the training ones) after 100
    # iterations; a network that does not learn stays near 10%, one half-trained below 90%.
    assert run["n_iter"] <= 100 and run["test_accuracy"] >= 0.95 and run["train_accuracy"] >= 0.985
    assert (in_tmp / "m" / "d8.npz").exists()
    quiet = cli("train", "--data", "digits8", "--max-iter", "2", "--quiet", "--out", "q.npz")
    assert quiet.returncode == 0 and "training" not in quiet.stderr


def test_train_other_kinds(cli, in_tmp):
    run = ok_json(
        cli(
            "train",
            "--data",
            "digits8",
            "--hidden",
            "32",
            "--activation",
            "relu",
            "--output",
            "softmax",
            "--optimizer",
            "lbfgs",
            "--max-iter",
            "100",
            "--json",
            "--out",
            "relu.npz",
        )
    )
    assert run["settings"]["activation"] == "relu" and run["settings"]["output"] == "softmax"
    assert run["test_accuracy"] >= 0.95  # measured: 97.22%
    assert "64-32-10 relu/softmax" in cli("evaluate", "relu.npz").stdout


def test_train_with_report(cli, in_tmp):
    import nnlearn.reporting._report  # noqa: F401  (imported: a broken module fails here, never skips)

    run = ok_json(
        cli("train", "--data", "digits8", "--max-iter", "20", "--optimizer", "lbfgs", "--report", "rep", "--json")
    )
    assert Path(run["report"]) == Path("rep") / "index.html" and (in_tmp / "rep" / "index.html").exists()


# ------------------------------------------------------------------ cost, gradcheck


def test_cost_of_the_pretrained_weights_by_default(cli, in_tmp):
    result = cli("cost", "--lambda", "1")
    assert result.returncode == 0, result.stderr
    # The embedded digits give 0.379804; the course's own data 0.383770.
    assert result.stdout.splitlines()[0] == "cost J = 0.379804 at lambda 1 (course: 0.383770)"
    assert "pretrained" in result.stdout
    plain = ok_json(cli("cost", "--json"))  # no --lambda: the course's two, and the accuracy
    assert [(c["lambda"], round(c["cost"], 6), c["course"]) for c in plain["costs"]] == [
        (0, 0.283663, 0.287629),
        (1, 0.379804, 0.38377),
    ]
    assert plain["accuracy"] == 0.976 and plain["course_accuracy"] == 0.975
    text = cli("cost").stdout.splitlines()
    assert text[:3] == [
        "cost J = 0.283663 at lambda 0 (course: 0.287629)",
        "cost J = 0.379804 at lambda 1 (course: 0.383770)",
        "accuracy 97.60% (course: ~97.5% on its own data)",
    ]
    # the course states no cost at lambda 0.5, but its accuracy does not depend on lambda
    assert cli("cost", "--lambda", "0.5").stdout.splitlines()[:2] == [
        "cost J = 0.331733 at lambda 0.5",
        "accuracy 97.60% (course: ~97.5% on its own data)",
    ]
    assert plain["weights"] == "pretrained" and plain["layer_sizes"] == [400, 25, 10]
    other = cli("cost", "--lambda", "3")  # the course states no cost at lambda 3
    assert other.returncode == 0 and other.stdout.splitlines()[0] == "cost J = 0.572085 at lambda 3"


def test_cost_of_the_course_weights_file(cli, in_work):
    result = cli("cost", "--weights", EX4WEIGHTS, "--lambda", "1")
    assert result.returncode == 0, result.stderr
    J = float(re.search(r"cost J = ([0-9.]+)", result.stdout).group(1))
    assert abs(J - 0.383770) < 0.01 and abs(J - 0.379804) < 1e-6  # course's data; the embedded digits
    assert "(course: 0.383770)" in result.stdout  # the same weights as the shipped ones
    own = ok_json(cli("cost", "--weights", "small.npz", "--json"))
    assert own["course"] is None and own["weights"] == "small.npz"


def test_gradcheck_prints_the_course_columns(cli, in_tmp):
    result = cli("gradcheck")
    assert result.returncode == 0
    columns = [line.split() for line in result.stdout.splitlines() if re.fullmatch(r"\s*-?[0-9.]+\s+-?[0-9.]+", line)]
    assert len(columns) == 38  # the 3-5-3 debug network's weights
    assert all(abs(float(a) - float(b)) < 1e-8 for a, b in columns)
    difference = float(re.search(r"Relative Difference: (\S+)", result.stdout).group(1))
    assert difference < 1e-9
    deep = ok_json(cli("gradcheck", "--hidden", "4", "3", "--lambda", "3", "--json"))
    assert deep["layer_sizes"] == [3, 4, 3, 3]
    assert len(deep["numerical"]) == len(deep["analytical"]) == 43  # 4x4 + 3x5 + 3x4
    assert deep["passed"] and deep["relative_difference"] < 1e-9
    kinds = ok_json(cli("gradcheck", "--activation", "tanh", "--output", "softmax", "--json"))
    assert kinds["activation"] == "tanh" and kinds["output"] == "softmax" and kinds["passed"]


def test_gradcheck_exits_1_when_backpropagation_is_wrong(cli, in_tmp, monkeypatch):
    import nnlearn.core.gradcheck

    real = nnlearn.core.gradcheck.check_gradients

    def off_by_a_little(*args, **kwargs):
        difference, numgrad, grad = real(*args, **kwargs)
        return difference + 1e-6, numgrad, grad

    monkeypatch.setattr(nnlearn.core.gradcheck, "check_gradients", off_by_a_little)
    result = ok_json_status(cli("gradcheck", "--json"), 1)
    assert not result["passed"]


def ok_json_status(result, status):
    assert result.returncode == status, result.stderr
    return json.loads(result.stdout)


# ----------------------------------------------------------------- evaluate, predict


def test_evaluate(cli, in_work):
    directory, X_test, y_test, model = in_work
    report = ok_json(cli("evaluate", "small.npz", "--data", "few.npz", "--json"))
    assert report["m"] == 5 and report["accuracy"] == model.score(X_test[:5], y_test[:5])
    assert np.sum(report["confusion_matrix"]) == 5 and report["classes"] == list(range(10))
    text = cli("evaluate", EX4WEIGHTS, "--data", "digits20").stdout
    assert "accuracy  97.60%" in text and "precision" in text and "confusion matrix" in text


def test_predict_a_data_file(cli, in_work):
    directory, X_test, y_test, model = in_work
    out = ok_json(cli("predict", "small.npz", "few.npz", "--json"))
    rows = out["predictions"]
    assert [row["label"] for row in rows] == model.predict(X_test[:5]).tolist()
    assert [row["true_label"] for row in rows] == y_test[:5].tolist()
    assert all(abs(sum(row["probabilities"]) - 1) < 1e-9 and 0 < row["probability"] <= 1 for row in rows)


def write_png(image, path, size, invert):
    pixels = np.round(255 * np.clip(image, 0, 1)).astype(np.uint8)
    Image.fromarray(255 - pixels if invert else pixels).resize((size, size), Image.BICUBIC).save(path)
    return path.name


def test_predict_images(cli, in_work):
    # Held-out digits written as PNG files, as a user might draw them: dark on light and
    # light on dark, at 28x28 and 64x64. The model scores ~93% on these digits directly.
    directory, X_test, y_test, _ = in_work
    rows = np.random.default_rng(1).choice(len(X_test), 10, replace=False)
    styles = [(28, True), (64, False), (64, True)]
    names = [
        write_png(X_test[k].reshape(20, 20, order="F"), directory / f"img{k}-{size}-{invert}.png", size, invert)
        for size, invert in styles
        for k in rows
    ]
    out = ok_json(cli("predict", "small.npz", *names, "--json"))
    predicted = np.array([row["label"] for row in out["predictions"]]).reshape(len(styles), len(rows))
    for style, labels in zip(styles, predicted, strict=True):
        right = int(np.sum(labels == y_test[rows]))
        assert right >= 8, f"{right} of 10 right for {style}"
    text = cli("predict", "small.npz", names[0]).stdout
    assert names[0] in text and re.search(r"\b[0-9]\s+0\.\d{4}", text)


# ------------------------------------------------------------------------ reproduce


def checks_of(result):
    return {check["step"]: check for check in result["checks"]}


@pytest.mark.slow
def test_reproduce_matches_the_course_with_the_pretrained_weights(cli, in_tmp):
    out = ok_json(cli("reproduce", "--json"))  # exit status 0: every step matches
    checks = checks_of(out)
    assert abs(checks["cost at lambda 0"]["value"] - 0.283663) < 1e-6
    assert abs(checks["cost at lambda 1"]["value"] - 0.379804) < 1e-6
    assert checks["pretrained accuracy"]["value"] == 0.976  # 4880 of 5000
    assert checks["training accuracy after 400 CG iterations"]["value"] >= 0.99  # measured: 99.72%
    assert out["all_matched"] and len(checks) == 6, out["checks"]
    assert "not the course's ex4data1.mat" in out["data"] and "pretrained" in out["weights"]


@pytest.mark.slow
def test_reproduce_with_the_course_weights_file(cli, in_tmp):
    result = cli("reproduce", "--weights", EX4WEIGHTS, "--quiet")
    assert result.returncode == 0, result.stdout
    assert f"{EX4WEIGHTS} (given)" in result.stdout and "6 of 6 steps match the course" in result.stdout


def test_reproduce_exits_1_and_says_what_did_not_match(cli, in_tmp):
    # 20 CG iterations train the network to ~90%, short of the course's 99.5%.
    result = cli("reproduce", "--max-iter", "20", "--quiet")
    assert result.returncode == 1, result.stderr
    assert "the course's pretrained ex4weights.mat" in result.stdout
    assert re.search(r"cost at lambda 0\s+0\.283663\s+0\.287629\s+\+-0\.01\s+yes", result.stdout)
    assert re.search(r"cost at lambda 1\s+0\.379804\s+0\.383770\s+\+-0\.01\s+yes", result.stdout)
    assert re.search(r"pretrained accuracy\s+97\.60%\s+~97\.5%\s+\+-0\.5 pts\s+yes", result.stdout)
    assert re.search(r"sigmoid gradient at 0\s+0\.250000\s+0\.250000.*yes", result.stdout)
    assert re.search(r"training accuracy after 20 CG iterations .* NO", result.stdout)
    assert "5 of 6 steps match the course" in result.stdout

    out = ok_json_status(cli("reproduce", "--max-iter", "20", "--json"), 1)  # still one JSON object
    checks = checks_of(out)
    assert checks["pretrained accuracy"]["value"] == 0.976 and checks["pretrained accuracy"]["matched"]
    assert not out["all_matched"] and not checks["training accuracy after 20 CG iterations"]["matched"]


def test_reproduce_with_other_weights_does_not_match_the_costs(cli, in_work):
    out = ok_json_status(cli("reproduce", "--weights", "small.npz", "--max-iter", "20", "--json"), 1)
    checks = checks_of(out)
    assert not checks["cost at lambda 0"]["matched"] and not checks["cost at lambda 1"]["matched"]
    assert out["weights"] == "small.npz (given)"


# ----------------------------------------------------------------------- show, report


def test_show_digits_and_hidden_units(cli, in_work, tmp_path):
    import nnlearn.reporting._plots  # noqa: F401  (imported: a broken module fails here, never skips)

    assert cli("show", "--seed", "3", "--out", tmp_path / "d.png").returncode == 0
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    out = ok_json(cli("show", "small.npz", "--out", tmp_path / "h.png", "--json"))
    assert Path(out["figure"]).read_bytes()[:4] == b"\x89PNG"
    refused = cli("show", "small.npz", "--out", tmp_path / "h.png")
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_report(cli, in_work, tmp_path):
    import nnlearn.reporting._report  # noqa: F401  (imported: a broken module fails here, never skips)

    out = ok_json(cli("report", "small.npz", "--data", "few.npz", tmp_path / "rep", "--json"))
    assert Path(out["report"]).exists() and out["m"] == 5


# --------------------------------------------------------- honest and complete messages


def test_argparse_errors_name_the_verb(cli, in_tmp):
    for args in (["cost", "--weigths", "x.mat"], ["train", "--lambda", "one"], ["evaluate"]):
        result = cli(*args)
        assert_one_line_error(result)
        assert result.stderr.startswith(f"nnlearn {args[0]}: error: "), result.stderr


def test_train_says_why_it_stopped(cli, in_tmp):
    from nnlearn.optim._results import REASONS

    run = ok_json(cli("train", "--data", "digits8", "--optimizer", "lbfgs", "--max-iter", "5", "--json"))
    assert run["stop_reason"] == "max_iter" and run["stop_reason"] in REASONS and run["stop_message"]
    text = cli("train", "--data", "digits8", "--optimizer", "lbfgs", "--max-iter", "5", "--out", "t.npz")
    assert re.search(r"^stopped\s+--max-iter reached \(.+\)$", text.stdout, re.M), text.stdout
    assert "stop=max_iter" in text.stderr.splitlines()[-1]  # the progress bar's last state
    # A run that ends before --max-iter says why (fmincg's tolerance is not reached in 2000).
    converged = ok_json(
        cli(
            "train",
            "--data",
            "digits8",
            "--hidden",
            "5",
            "--optimizer",
            "lbfgs",
            "--json",
            "--max-iter",
            "2000",
            "--out",
            "c.npz",
        )
    )
    assert converged["n_iter"] < 2000 and converged["stop_reason"] in ("converged", "line_search_failed")


def test_train_mini_batch_options(cli, in_tmp):
    from nnlearn.training._settings import DEFAULTS

    run = ok_json(
        cli(
            *("train", "--data", "digits8", "--optimizer", "adam", "--batch-size", "50", "--learning-rate", "0.01"),
            *("--early-stopping", "--validation-fraction", "0.2", "--n-iter-no-change", "3", "--max-iter", "30"),
            "--json",
        )
    )
    s = run["settings"]
    assert (s["batch_size"], s["learning_rate"], s["early_stopping"]) == (50, 0.01, True)
    assert (s["validation_fraction"], s["n_iter_no_change"]) == (0.2, 3)
    model = nnlearn.load_model(in_tmp / "nnlearn-model.npz")
    assert model.history["batch_size"] == 50 and model.history["learning_rate"] == 0.01
    assert len(model.history["validation_scores"]) == model.history["n_iter"]  # early stopping was on
    plain = ok_json(
        cli("train", "--data", "digits8", "--optimizer", "sgd", "--max-iter", "2", "--out", "s.npz", "--json")
    )
    assert plain["settings"]["batch_size"] == DEFAULTS.batch_size
    assert plain["settings"]["learning_rate"] is None  # the optimizer's own default
    assert (
        "batch_size"
        not in ok_json(cli("train", "--data", "digits8", "--max-iter", "2", "--out", "c.npz", "--json"))["settings"]
    )


def test_train_records_the_framing(cli, in_tmp):
    digits8 = ok_json(cli("train", "--data", "digits8", "--max-iter", "2", "--out", "a.npz", "--json"))
    assert digits8["settings"]["framing"] == "fill"
    assert nnlearn.load_model(in_tmp / "a.npz").history["framing"] == "fill"
    X, y = nnlearn.load_digits8()
    np.savez(in_tmp / "d.npz", X=X, y=y)
    default = ok_json(cli("train", "--data", "d.npz", "--max-iter", "2", "--out", "b.npz", "--json"))
    stated = ok_json(
        cli("train", "--data", "d.npz", "--framing", "fill", "--max-iter", "2", "--out", "c.npz", "--json")
    )
    assert default["settings"]["framing"] == "mnist" and stated["settings"]["framing"] == "fill"
    assert nnlearn.load_model(in_tmp / "c.npz").history["framing"] == "fill"


def test_a_long_run_is_announced_with_an_estimate(cli, in_tmp, monkeypatch):
    from nnlearn.cli import train

    quick = cli("train", "--data", "digits8", "--max-iter", "2", "--out", "a.npz", "--quiet")
    assert "notice" not in quick.stderr
    monkeypatch.setattr(train, "ASSUMED_RATE", 1e4)  # a very slow machine
    result = cli("train", "--data", "digits8", "--max-iter", "2", "--out", "b.npz", "--json")
    run = ok_json(result)  # stdout stays one JSON object
    [notice] = [line for line in result.stderr.splitlines() if "notice" in line]
    assert notice.startswith("nnlearn train: notice: 2 iterations of a 64-25-10 network (1,885 weights) on 1,437")
    assert "may take about" in notice and run["n_iter"] == 2


def test_training_data_are_not_called_test_data(cli, in_tmp):
    import nnlearn.reporting._report  # noqa: F401  (imported: a broken module fails here, never skips)

    run = ok_json(
        cli("train", "--data", "digits8", "--test-size", "0", "--max-iter", "10", "--report", "rep", "--json")
    )
    assert run["test_accuracy"] is None and run["m_test"] == 0
    page = (in_tmp / "rep" / "index.html").read_text()
    assert "training examples (no held-out part)" in page and "test accuracy" not in page
    assert "Confusion matrix on the training data" in page and "test data" not in page
    text = cli("evaluate", "nnlearn-model.npz")
    assert "the model's own training data" in text.stdout and "test" not in text.stdout.split("\n")[1]
    assert ok_json(cli("evaluate", "nnlearn-model.npz", "--json"))["data_role"] == "training"
    text = cli("train", "--data", "digits8", "--test-size", "0", "--max-iter", "2", "--out", "t.npz").stdout
    assert "1797 training examples (no held-out part)" in text


def test_held_out_data_are_test_data(cli, in_tmp):
    ok_json(cli("train", "--data", "digits8", "--max-iter", "10", "--json"))
    assert ok_json(cli("evaluate", "nnlearn-model.npz", "--json"))["data_role"] == "test"
    assert "360 test examples" in cli("evaluate", "nnlearn-model.npz").stdout
    whole = cli("evaluate", "nnlearn-model.npz", "--data", "digits8")
    assert "includes the model's training examples" in whole.stdout


# ------------------------------------------------------------------- never lose a file


def test_a_failed_model_write_saves_the_weights_to_a_fallback(cli, in_tmp, monkeypatch):
    monkeypatch.setenv("NNLEARN_CACHE_DIR", str(in_tmp / "cache"))
    real = nnlearn.Model.save

    def disk_full(self, path, overwrite=False):
        if Path(path).name == "m.npz":
            raise OSError(28, "No space left on device", str(path))
        return real(self, path, overwrite)

    monkeypatch.setattr(nnlearn.Model, "save", disk_full)
    result = cli("train", "--data", "digits8", "--max-iter", "3", "--out", "m.npz", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [rescued] = (in_tmp / "cache" / "rescued").iterdir()
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        f"nnlearn train: error: cannot write m.npz (No space left on device); the trained weights were saved "
        f"to {rescued} instead"
    )
    run = json.loads(result.stdout)
    assert run["model"] == str(rescued) and run["errors"] == [line.split("error: ", 1)[1]]
    assert nnlearn.load_model(rescued).history["n_iter"] == 3 and not (in_tmp / "m.npz").exists()


def test_an_out_file_that_appears_while_training_is_not_replaced(cli, in_tmp, monkeypatch):
    import nnlearn.cli._monitor

    monkeypatch.setenv("NNLEARN_CACHE_DIR", str(in_tmp / "cache"))
    real = nnlearn.cli._monitor.Monitor.callback

    def another_run_finishes_first(self, iteration, J, x):
        if iteration == 1:
            (in_tmp / "m.npz").write_bytes(b"the other run's model")
        return real(self, iteration, J, x)

    monkeypatch.setattr(nnlearn.cli._monitor.Monitor, "callback", another_run_finishes_first)
    result = cli("train", "--data", "digits8", "--max-iter", "3", "--out", "m.npz")
    assert result.returncode == 1 and "created by someone else while this run trained" in result.stderr
    assert (in_tmp / "m.npz").read_bytes() == b"the other run's model"
    [rescued] = (in_tmp / "cache" / "rescued").iterdir()
    assert f"model saved to   {rescued}" in result.stdout


@pytest.mark.slow
def test_a_half_written_report_does_not_block_a_rerun(cli, in_tmp, monkeypatch):
    from nnlearn.reporting import _report as report

    real = report.save_figure

    def fails_at_the_cost_figure(fig, path, overwrite=False):
        if Path(path).name == "cost.png":
            raise OSError(28, "No space left on device", str(path))
        return real(fig, path, overwrite)

    monkeypatch.setattr(report, "save_figure", fails_at_the_cost_figure)
    result = cli("train", "--data", "digits8", "--max-iter", "5", "--report", "rep", "--out", "m.npz")
    assert result.returncode == 1 and "model saved to   m.npz" in result.stdout
    assert "cannot write the report rep (No space left on device); the model was saved to m.npz" in result.stderr
    assert (in_tmp / "rep" / "digits.png").exists() and not (in_tmp / "rep" / "index.html").exists()
    monkeypatch.setattr(report, "save_figure", real)
    again = cli("report", "m.npz", "rep")  # no --force needed for the leftovers
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (in_tmp / "rep").iterdir()) == sorted(["index.html", *report.FIGURES])
    refused = cli("report", "m.npz", "rep")  # a finished report is the user's
    assert refused.returncode == 2 and "--force" in refused.stderr


@pytest.mark.slow
def test_closed_stdout_and_stderr_do_not_stop_a_run(tmp_path):
    result = subprocess.run(
        ["sh", "-c", 'exec "$0" "$@" >&- 2>&-', str(SCRIPT), "train", "--data", "digits8", "--max-iter", "5"],
        cwd=tmp_path,
        env=ENV,
        timeout=120,
    )
    assert result.returncode == 1  # the result could not be printed (and the line saying so neither)
    assert nnlearn.load_model(tmp_path / "nnlearn-model.npz").history["n_iter"] == 5


@pytest.mark.slow
def test_broken_pipes_do_not_lose_the_model(tmp_path):
    # Both readers went away before the run began: the bar, the result and the messages
    # meet broken pipes; the model is still written.
    process = subprocess.Popen(
        [str(SCRIPT), "train", "--data", "digits8", "--max-iter", "5", "--out", "m.npz"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    process.stderr.close()
    assert process.wait(timeout=120) == 0  # a reader that went away is no failure
    assert nnlearn.load_model(tmp_path / "m.npz").history["n_iter"] == 5


@pytest.mark.slow  # a real process for a real limit; test_interrupt fakes the failure in-process
def test_a_checkpoint_too_large_to_write_warns_and_the_model_is_written(tmp_path):
    import resource

    def limit_file_size():
        # The model (about 16 kB) fits; fmincg's checkpoint (about 45 kB) does not.
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    result = subprocess.run(
        [str(SCRIPT), "train", "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "5", "--quiet"]
        + ["--checkpoint", "c.ckpt", "--checkpoint-every", "0", "--out", "m.npz"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "nnlearn train: warning: cannot write the checkpoint c.ckpt (File too large); the run goes on and "
        "tries again at the next checkpoint\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no partial file, no temporary
