"""The ``nnlearn`` command line, run as the installed console script in a subprocess."""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nnlearn

from .conftest import EX4WEIGHTS

SCRIPT = Path(sys.executable).parent / "nnlearn"
VERBS = ("train", "evaluate", "predict", "cost", "gradcheck", "reproduce", "report", "show")
# One BLAS thread per run: the test machines' cores are shared, and two-thread OpenBLAS
# on a busy core is 10-20x slower, not faster. The results do not depend on it.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def nnlearn_cli(*args, cwd):
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600)


def ok_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout


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


def test_script_is_installed_next_to_python():
    assert SCRIPT.exists(), f"no console script at {SCRIPT}; pip install -e ."


def test_python_m_nnlearn(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nnlearn", "--help"], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0 and "train" in result.stdout


def run_all(commands, cwd):
    """Run many short commands a few at a time: each is mostly interpreter start-up."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: nnlearn_cli(*args, cwd=cwd), commands))


@pytest.fixture(scope="module")
def help_runs(tmp_path_factory):
    return dict(zip(VERBS, run_all([(verb, "--help") for verb in VERBS], tmp_path_factory.mktemp("help"))))


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb, help_runs):
    result = help_runs[verb]
    assert result.returncode == 0
    assert "example:" in result.stdout and f"nnlearn {verb}" in result.stdout.split("example:")[1]
    assert "--json" in result.stdout


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
    "train-test-size": (["train", "--test-size", "1.5"], "--test-size"),
    "train-dtype": (["train", "--dtype", "float16"], "dtype"),
    "train-not-a-number": (["train", "--lambda", "one"], "--lambda"),
    "evaluate-missing-model": (["evaluate", "nosuch.npz"], "no such file"),
    "evaluate-malformed-model-npz": (["evaluate", "bad.npz"], "bad.npz"),
    "evaluate-malformed-model-mat": (["evaluate", "bad.mat"], "bad.mat"),
    "evaluate-model-not-npz-or-mat": (["evaluate", "bad.csv"], ".npz"),
    "evaluate-missing-data": (["evaluate", "small.npz", "--data", "nosuch.npz"], "no such file"),
    "evaluate-unknown-dataset": (["evaluate", "small.npz", "--data", "mnist"], "unknown dataset"),
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
    "cost-negative-lambda": (["cost", "--weights", EX4WEIGHTS, "--lambda", "-0.5"], "lambda"),
    "cost-no-weights": (["cost"], "--weights"),
    "gradcheck-negative-lambda": (["gradcheck", "--lambda", "-3"], "lambda"),
    "gradcheck-zero-hidden": (["gradcheck", "--hidden", "0"], "hidden"),
    "reproduce-unknown-dataset": (["reproduce", "--data", "ex4data1"], "unknown dataset"),
    "reproduce-missing-weights": (["reproduce", "--weights", "nosuch.mat"], "no such file"),
    "reproduce-malformed-data": (["reproduce", "--data", "bad.mat"], "bad.mat"),
    "reproduce-weights-do-not-fit": (["reproduce", "--weights", EX4WEIGHTS, "--data", "digits8"], "1797x64"),
    "reproduce-max-iter-0": (["reproduce", "--max-iter", "0"], "max_iter"),
    "report-missing-model": (["report", "nosuch.npz", "out"], "no such file"),
    "report-unknown-dataset": (["report", "small.npz", "--data", "digit20", "out"], "unknown dataset"),
    "report-weights-do-not-fit": (["report", EX4WEIGHTS, "--data", "digits8", "out"], "25x401"),
    "show-unknown-dataset": (["show", "--data", "digits2"], "unknown dataset"),
    "show-missing-model": (["show", "nosuch.npz"], "no such file"),
    "show-malformed-model": (["show", "bad.npz"], "bad.npz"),
    "unknown-verb": (["fit"], "invalid choice"),
}


@pytest.fixture(scope="module")
def bad_runs(work):
    return dict(zip(BAD_INPUT, run_all([args for args, _ in BAD_INPUT.values()], work[0])))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(case, bad_runs, work):
    args, word = BAD_INPUT[case]
    result = bad_runs[case]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnlearn") and ": error: " in lines[0]
    assert word.lower() in lines[0].lower(), lines[0]
    assert result.stdout == ""
    assert not (work[0] / "nnlearn-model.npz").exists()


def test_weights_that_do_not_fit_name_both_shapes(bad_runs):
    line = bad_runs["cost-weights-do-not-fit"].stderr
    assert "Theta1 25x401" in line and "1797x64" in line


# ---------------------------------------------------------------------------- train


def accuracies(text):
    found = dict(re.findall(r"(train|test) accuracy\s+([0-9.]+)%", text))
    return float(found["train"]), float(found.get("test", "nan"))


@pytest.mark.slow
def test_train_default_is_the_course_network_on_a_split(tmp_path):
    result = nnlearn_cli("train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train, test = accuracies(result.stdout)
    assert train >= 99.0 and test >= 91.0, result.stdout
    assert "400-25-10" in result.stdout and "4000 training / 1000 test" in result.stdout
    assert re.search(r"final cost\s+0\.\d+", result.stdout) and re.search(r"time\s+[0-9.]+ s", result.stdout)
    assert "training" in result.stderr and "cost=" in result.stderr  # the progress bar
    model = nnlearn.load_model(tmp_path / "nnlearn-model.npz")
    assert model.layer_sizes == (400, 25, 10) and model.lam == 1.0
    assert model.history["optimizer"] == "cg" and model.history["n_iter"] == 400

    again = nnlearn_cli("train", cwd=tmp_path)  # refused at once, before training
    assert again.returncode == 2 and "--force" in again.stderr and "training" not in again.stderr
    evaluated = ok_json(nnlearn_cli("evaluate", "nnlearn-model.npz", "--json", cwd=tmp_path))
    assert evaluated["m"] == 1000 and abs(100 * evaluated["accuracy"] - test) < 0.01


@pytest.mark.slow
def test_train_on_everything(tmp_path):
    run = ok_json(nnlearn_cli("train", "--test-size", "0", "--json", cwd=tmp_path))
    assert run["train_accuracy"] >= 0.995 and run["test_accuracy"] is None
    assert run["m_train"] == 5000 and run["settings"]["optimizer"] == "cg"


def test_train_json_is_one_object_and_quiet(tmp_path):
    run = ok_json(nnlearn_cli("train", "--data", "digits8", "--hidden", "16", "8", "--max-iter", "30",
                              "--optimizer", "lbfgs", "--dtype", "float32", "--out", "m/d8.npz", "--json",
                              cwd=tmp_path))
    assert set(run) >= {"final_cost", "train_accuracy", "test_accuracy", "seconds", "model", "settings", "n_iter"}
    assert run["settings"]["hidden"] == [16, 8] and run["settings"]["dtype"] == "float32"
    assert run["n_iter"] <= 30 and run["test_accuracy"] > 0.5
    assert (tmp_path / "m" / "d8.npz").exists()
    assert "training" not in nnlearn_cli("train", "--data", "digits8", "--max-iter", "2", "--quiet",
                                         "--out", "q.npz", cwd=tmp_path).stderr


def test_train_with_report(tmp_path):
    pytest.importorskip("nnlearn.report")
    run = ok_json(nnlearn_cli("train", "--data", "digits8", "--max-iter", "20", "--optimizer", "lbfgs",
                              "--report", "rep", "--json", cwd=tmp_path))
    assert Path(run["report"]) == Path("rep") / "index.html" and (tmp_path / "rep" / "index.html").exists()


# ------------------------------------------------------------------ cost, gradcheck


def test_cost_of_the_course_weights(tmp_path, ex4weights):
    result = nnlearn_cli("cost", "--weights", ex4weights, "--lambda", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    J = float(re.search(r"cost J = ([0-9.]+)", result.stdout).group(1))
    assert abs(J - 0.383770) < 0.01 and abs(J - 0.379804) < 1e-6  # course's data; the embedded digits
    plain = ok_json(nnlearn_cli("cost", "--weights", ex4weights, "--json", cwd=tmp_path))
    assert plain["lambda"] == 0 and abs(plain["cost"] - 0.283663) < 1e-6


def test_gradcheck_prints_the_course_columns(tmp_path):
    result = nnlearn_cli("gradcheck", cwd=tmp_path)
    assert result.returncode == 0
    columns = [line.split() for line in result.stdout.splitlines() if re.fullmatch(r"\s*-?[0-9.]+\s+-?[0-9.]+", line)]
    assert len(columns) == 38  # the 3-5-3 debug network's weights
    assert all(abs(float(a) - float(b)) < 1e-8 for a, b in columns)
    difference = float(re.search(r"Relative Difference: (\S+)", result.stdout).group(1))
    assert difference < 1e-9
    deep = ok_json(nnlearn_cli("gradcheck", "--hidden", "4", "3", "--lambda", "3", "--json", cwd=tmp_path))
    assert deep["layer_sizes"] == [3, 4, 3, 3] and len(deep["numerical"]) == len(deep["analytical"]) == 43  # 4x4 + 3x5 + 3x4
    assert deep["passed"] and deep["relative_difference"] < 1e-9


# ----------------------------------------------------------------- evaluate, predict


def test_evaluate(work):
    directory, X_test, y_test, model = work
    report = ok_json(nnlearn_cli("evaluate", "small.npz", "--data", "few.npz", "--json", cwd=directory))
    assert report["m"] == 5 and report["accuracy"] == model.score(X_test[:5], y_test[:5])
    assert np.sum(report["confusion_matrix"]) == 5 and report["classes"] == list(range(10))
    text = nnlearn_cli("evaluate", EX4WEIGHTS, "--data", "digits20", cwd=directory).stdout
    assert "accuracy  97.60%" in text and "precision" in text and "confusion matrix" in text


def test_predict_a_data_file(work):
    directory, X_test, y_test, model = work
    out = ok_json(nnlearn_cli("predict", "small.npz", "few.npz", "--json", cwd=directory))
    rows = out["predictions"]
    assert [row["label"] for row in rows] == model.predict(X_test[:5]).tolist()
    assert [row["true_label"] for row in rows] == y_test[:5].tolist()
    assert all(abs(sum(row["probabilities"]) - 1) < 1e-9 and 0 < row["probability"] <= 1 for row in rows)


def write_png(image, path, size, invert):
    pixels = np.round(255 * np.clip(image, 0, 1)).astype(np.uint8)
    Image.fromarray(255 - pixels if invert else pixels).resize((size, size), Image.BICUBIC).save(path)
    return path.name


def test_predict_images(work):
    # Held-out digits written as PNG files, as a user might draw them: dark on light and
    # light on dark, at 28x28 and 64x64. The model scores ~93% on these digits directly.
    directory, X_test, y_test, _ = work
    rows = np.random.default_rng(1).choice(len(X_test), 10, replace=False)
    styles = [(28, True), (64, False), (64, True)]
    names = [write_png(X_test[k].reshape(20, 20, order="F"), directory / f"img{k}-{size}-{invert}.png", size, invert)
             for size, invert in styles for k in rows]
    out = ok_json(nnlearn_cli("predict", "small.npz", *names, "--json", cwd=directory))
    predicted = np.array([row["label"] for row in out["predictions"]]).reshape(len(styles), len(rows))
    for style, labels in zip(styles, predicted):
        right = int(np.sum(labels == y_test[rows]))
        assert right >= 8, f"{right} of 10 right for {style}"
    text = nnlearn_cli("predict", "small.npz", names[0], cwd=directory).stdout
    assert names[0] in text and re.search(r"\b[0-9]\s+0\.\d{4}", text)


# ------------------------------------------------------------------------ reproduce


@pytest.mark.slow
def test_reproduce_with_the_course_weights(tmp_path, ex4weights):
    out = ok_json(nnlearn_cli("reproduce", "--weights", ex4weights, "--json", cwd=tmp_path))
    checks = {check["step"]: check for check in out["checks"]}
    assert abs(checks["cost at lambda 0"]["value"] - 0.283663) < 1e-6
    assert abs(checks["cost at lambda 1"]["value"] - 0.379804) < 1e-6
    assert out["all_matched"], out["checks"]
    assert "not the course's ex4data1.mat" in out["data"]


def test_reproduce_says_which_weights_and_what_did_not_match(tmp_path):
    result = nnlearn_cli("reproduce", "--data", "digits8", "--max-iter", "20", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the weights trained here" in result.stdout
    assert re.search(r"sigmoid gradient at 0\s+0\.250000\s+0\.250000.*yes", result.stdout)
    assert re.search(r"cost at lambda 1 .* NO", result.stdout)
    assert re.search(r"of 5 steps match the course", result.stdout)


# ----------------------------------------------------------------------- show, report


def test_show_digits_and_hidden_units(work, tmp_path):
    pytest.importorskip("nnlearn.plots")
    directory = work[0]
    assert nnlearn_cli("show", "--seed", "3", "--out", tmp_path / "d.png", cwd=directory).returncode == 0
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    out = ok_json(nnlearn_cli("show", "small.npz", "--out", tmp_path / "h.png", "--json", cwd=directory))
    assert Path(out["figure"]).read_bytes()[:4] == b"\x89PNG"
    refused = nnlearn_cli("show", "small.npz", "--out", tmp_path / "h.png", cwd=directory)
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_report(work, tmp_path):
    pytest.importorskip("nnlearn.report")
    out = ok_json(nnlearn_cli("report", "small.npz", "--data", "few.npz", tmp_path / "rep", "--json",
                              cwd=work[0]))
    assert Path(out["report"]).exists() and out["m"] == 5
