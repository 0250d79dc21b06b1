"""Early stopping for every optimiser, and training on distorted copies (augmentation):
where the copies come from, and that both resume exactly from a checkpoint."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score

import nnlearn.training._augment
import nnlearn.training._fitting
from nnlearn import NeuralNetClassifier, load_digits8, train
from nnlearn.core import one_hot
from nnlearn.errors import ParameterError
from nnlearn.training import EarlyStoppingWarning
from nnlearn.training._fitting import hold_out
from nnlearn.training._settings import Options

from .helpers import assert_one_line_error, ok_json, run_cli

FULL_BATCH = ["cg", "lbfgs", "fmincg"]


@pytest.fixture(scope="module")
def digits8():
    return load_digits8()  # 1797 distinct rows: a row tells which example it is


def rows_of(X):
    return {row.tobytes() for row in np.asarray(X, dtype=np.float64)}


@pytest.fixture
def distorted(monkeypatch):
    """Every array of originals that augmentation distorts, as the sets of its rows."""
    seen = []
    real = nnlearn.training._augment.distort

    def spy(X, **kwargs):
        seen.append(rows_of(X))
        return real(X, **kwargs)

    monkeypatch.setattr(nnlearn.training._augment, "distort", spy)  # the full-batch optimisers' copies
    monkeypatch.setattr(nnlearn.training._fitting, "distort", spy)  # sgd's and adam's, every epoch
    return seen


def validation_rows(X, y, seed, fraction=0.1):
    """The rows early stopping holds out: the split stream of ``seed``, as nnlearn.training._fitting draws it."""
    _, Y = one_hot(y)
    split_seed = np.random.SeedSequence(seed).spawn(3)[1]
    _, (X_val, _, _) = hold_out(X, Y, None, fraction, split_seed)
    return rows_of(X_val)


@pytest.mark.parametrize("optimizer", FULL_BATCH)
def test_a_full_batch_optimizer_stops_early_with_the_best_weights(digits8, optimizer):
    X, y = digits8
    iterates = []
    model = train(
        X,
        y,
        hidden_layer_sizes=(12,),
        optimizer=optimizer,
        max_iter=200,
        seed=5,
        early_stopping=True,
        n_iter_no_change=5,
        callback=lambda i, J, x: iterates.append(x.copy()),
    )
    history = model.history
    scores, losses = history["validation_scores"], history["validation_losses"]
    assert history["stop_reason"] == "converged" and "neither the validation accuracy nor" in history["message"]
    assert len(scores) == len(losses) == history["n_iter"] < 200
    assert history["early_stopping"] is True and history["n_iter_no_change"] == 5
    # kept: the best accuracy, of equal ones the lowest loss; a later equal accuracy that is
    # no lower in loss is no improvement
    best = min(np.flatnonzero(scores == np.max(scores)), key=lambda i: (losses[i], i)) + 1
    np.testing.assert_array_equal(np.concatenate([t.ravel() for t in model.thetas]), iterates[best - 1])
    # stopped at the first iteration after 5 in a row that beat neither best by more than 1e-4
    stale = [
        i >= 5
        and max(scores[i - 4 : i + 1]) <= max(scores[: i - 4]) + 1e-4
        and min(losses[i - 4 : i + 1]) >= min(losses[: i - 4]) - 1e-4
        for i in range(len(scores))
    ]
    assert stale.index(True) == len(scores) - 1


@pytest.mark.parametrize("scale", [1, 16])
def test_full_batch_early_stopping_outlasts_a_flat_start_and_warns_near_chance(digits8, scale):
    """Scaled to [0, 1] the digits' held-out accuracy stays at chance for the first
    iterations: the held-out loss keeps the run going. Cut short, the run warns."""
    X, y = digits8
    X_train, X_test, y_train, y_test = X[:1400] / scale, X[1400:] / scale, y[:1400], y[1400:]
    with warnings.catch_warnings():
        warnings.simplefilter("error", EarlyStoppingWarning)
        model = NeuralNetClassifier(early_stopping=True, max_iter=150).fit(X_train, y_train)
    assert model.validation_scores_[0] < 0.2 and model.n_iter_ > 60
    assert model.score(X_test, y_test) > 0.85
    with pytest.warns(EarlyStoppingWarning, match=r"best held-out accuracy, 1\d\.\d%, is within 5 points of chance"):
        NeuralNetClassifier(early_stopping=True, max_iter=2).fit(X_train / 16, y_train)


def test_without_early_stopping_a_full_batch_run_is_unchanged(digits8):
    X, y = digits8
    plain = train(X, y, hidden_layer_sizes=(12,), optimizer="lbfgs", max_iter=30, seed=5)
    assert plain.history["n_iter"] == 30 and "validation_scores" not in plain.history
    again = train(
        X, y, hidden_layer_sizes=(12,), optimizer="lbfgs", max_iter=30, seed=5, early_stopping=False, augment=0
    )
    np.testing.assert_array_equal(plain.thetas[0], again.thetas[0])


def test_the_stopping_settings_are_the_options_own(digits8):
    new = Options(early_stopping=True, validation_fraction=0.2).checked()
    assert new.early_stopping and new.validation_fraction == 0.2
    assert not replace(new, early_stopping=False).checked().early_stopping
    assert replace(new, n_iter_no_change=7).checked().n_iter_no_change == 7
    with pytest.raises(ParameterError, match="validation_fraction must lie strictly between 0 and 1"):
        Options(early_stopping=True, validation_fraction=1.0).checked()


@pytest.mark.filterwarnings("ignore::nnlearn.training.EarlyStoppingWarning")  # 3 iterations learn little
@pytest.mark.parametrize("optimizer", ["lbfgs", "fmincg", "adam"])
def test_augmentation_distorts_only_what_is_left_after_the_early_stopping_split(digits8, distorted, optimizer):
    X, y = digits8
    train(X, y, hidden_layer_sizes=(12,), optimizer=optimizer, max_iter=3, seed=2, early_stopping=True, augment=1)
    held_out = validation_rows(X, y, seed=2)
    assert len(held_out) == 180
    # the full-batch optimisers distort once, sgd and adam every epoch
    assert len(distorted) == (3 if optimizer == "adam" else 1)
    for rows in distorted:
        assert rows == rows_of(X) - held_out


def test_the_command_line_distorts_neither_test_nor_validation_digits(digits8, distorted, capsys, tmp_path):
    from nnlearn.datasets._builtin import split

    X, y = digits8
    run = ok_json(
        run_cli(
            capsys,
            *("train", "--data", "digits8", "--optimizer", "lbfgs", "--max-iter", "3", "--augment", "1"),
            *("--early-stopping", "--out", tmp_path / "m.npz", "--json"),
        )
    )
    assert run["settings"]["augment"] == 1 and run["settings"]["early_stopping"] is True
    X_train, X_test, y_train, _ = split(X, y, 0.2, 0)
    (rows,) = distorted
    assert rows == rows_of(X_train) - validation_rows(X_train, y_train, seed=0)
    assert not rows & rows_of(X_test)


def test_cross_validation_distorts_only_each_folds_training_part(digits8, distorted):
    X, y = digits8
    folds = list(StratifiedKFold(3).split(X, y))
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=3, augment=1)
    cross_val_score(clf, X, y, cv=folds)
    assert [rows == rows_of(X[fit]) for rows, (fit, _) in zip(distorted, folds)] == [True] * 3


def resumed_equals_uninterrupted(X, y, settings, stop_at, path):
    """Interrupt a run at iteration ``stop_at(uninterrupted model)``, resume it from its
    checkpoint file, and compare with the uninterrupted run; returns that."""
    from nnlearn.training import Continuation

    full = train(X, y, **settings)
    stop_at = stop_at(full)

    def interrupt(iteration, J, x):
        if iteration == stop_at:
            raise StopIteration

    optimizer = settings["optimizer"]
    first = train(
        X,
        y,
        **settings,
        callback=interrupt,
        checkpoint=lambda run: run.save(path, {"optimizer": optimizer}),
    )
    assert first.history["n_iter"] == stop_at and first.history["stop_reason"] == "interrupted"
    _, state = Continuation.load(path)
    resumed = train(X, y, **settings, resume=state)
    assert resumed.history["n_iter"] == full.history["n_iter"]
    assert resumed.history["stop_reason"] == full.history["stop_reason"]
    assert resumed.history["cost"] == full.history["cost"]
    assert resumed.history.get("validation_scores") == full.history.get("validation_scores")
    for a, b in zip(resumed.thetas, full.thetas):
        np.testing.assert_array_equal(a, b)
    return full


@pytest.mark.parametrize("optimizer", FULL_BATCH)
def test_a_resumed_run_stops_early_where_the_uninterrupted_one_does(digits8, optimizer, tmp_path):
    X, y = digits8
    settings = dict(hidden_layer_sizes=(12,), optimizer=optimizer, max_iter=200, seed=5, early_stopping=True)
    settings.update(n_iter_no_change=5)

    def after_the_best(model):  # a resumed run must remember the best it has seen and how long ago
        return int(np.argmax(model.history["validation_scores"])) + 3

    full = resumed_equals_uninterrupted(X, y, settings, after_the_best, tmp_path / "run.ckpt.npz")
    assert full.history["stop_reason"] == "converged" and full.history["n_iter"] < 200


@pytest.mark.parametrize("optimizer", ["lbfgs", "fmincg", "adam"])
def test_a_resumed_run_with_distorted_copies_equals_the_uninterrupted_one(digits8, optimizer, tmp_path):
    X, y = digits8
    settings = dict(hidden_layer_sizes=(12,), optimizer=optimizer, max_iter=8, seed=3, augment=1)
    full = resumed_equals_uninterrupted(X, y, settings, lambda model: 4, tmp_path / "run.ckpt.npz")
    assert full.history["augment"] == 1 and full.history["stop_reason"] == "max_iter"
    # the copies matter: another seed for them (through the seed) gives other weights
    other = train(X, y, **{**settings, "seed": 4})
    assert not np.array_equal(other.thetas[0], full.thetas[0])


def test_a_checkpoints_distortions_and_early_stopping_are_resumed_by_the_command_line(capsys, tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "m.npz"
    first = run_cli(
        capsys,
        *("train", "--data", "digits8", "--hidden", "8", "--optimizer", "fmincg", "--max-iter", "3"),
        *("--augment", "1", "--early-stopping", "--checkpoint", ckpt, "--out", out, "--quiet"),
    )
    assert first.returncode == 0, first.stderr
    differs = run_cli(capsys, "train", "--resume", ckpt, "--augment", "2", "--out", out, "--force")
    assert_one_line_error(differs, "--augment 2 differs from the checkpoint's 1")
    resumed = ok_json(run_cli(capsys, "train", "--resume", ckpt, "--max-iter", "5", "--out", out, "--force", "--json"))
    assert resumed["settings"]["augment"] == 1 and resumed["settings"]["early_stopping"] is True
    assert resumed["n_iter"] == 5


def test_the_command_line_stops_every_optimizer_early_and_refuses_mini_batch_options_for_others(capsys, tmp_path):
    run = ok_json(
        run_cli(
            capsys,
            *("train", "--data", "digits8", "--optimizer", "cg", "--early-stopping", "--n-iter-no-change", "2"),
            *("--out", tmp_path / "m.npz", "--json"),
        )
    )
    assert run["stop_reason"] == "converged" and run["n_iter"] < 400
    refused = run_cli(capsys, "train", "--optimizer", "cg", "--batch-size", "10", "--out", tmp_path / "n.npz")
    assert_one_line_error(refused, "--batch-size", "mini-batch")
    negative = run_cli(capsys, "train", "--augment", "-1", "--out", tmp_path / "n.npz")
    assert_one_line_error(negative, "--augment: augment must be a number of distorted copies >= 0")


def test_augmentation_needs_square_images(digits8):
    X, y = digits8
    with pytest.raises(ParameterError, match="63 features are not a square image"):
        train(X[:, :63], y, hidden_layer_sizes=(4,), max_iter=1, augment=1)


def test_the_command_line_says_in_one_line_when_early_stopping_kept_a_model_near_chance(capsys, tmp_path):
    run = run_cli(
        capsys,
        *("train", "--data", "digits8", "--early-stopping", "--max-iter", "1", "--out", tmp_path / "m.npz"),
    )
    assert run.returncode == 0, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "warning" in line]
    assert line.startswith("nnlearn train: warning: early stopping's best held-out accuracy, ")
    assert "within 5 points of chance (10.4%, always the most frequent class)" in line
