"""Presets: named training settings that train and nnlearn train start from."""

import numpy as np
import pytest

from nnlearn import load_digits8, train
from nnlearn.errors import ParameterError
from nnlearn.training._augment import Augment
from nnlearn.training._presets import PRESETS, options_with, preset_options
from nnlearn.training._settings import DEFAULTS, Options

from .helpers import assert_one_line_error, ok_json, run_cli


@pytest.fixture(scope="module")
def digits8_small():
    X, y = load_digits8()
    return X[:300], y[:300]


def test_the_course_preset_is_the_defaults_and_best_is_checked_options():
    assert preset_options("course") == DEFAULTS
    best = preset_options("best")
    assert isinstance(best, Options) and best.checked() == best.checked().checked()
    assert best.hidden_layer_sizes != DEFAULTS.hidden_layer_sizes and isinstance(best.augment, Augment)
    assert set(PRESETS) == {"course", "best"}


def test_a_preset_resolves_to_its_options_and_settings_given_override_it(digits8_small):
    X, y = digits8_small
    best = preset_options("best")
    model = train(X, y, preset="best", max_iter=1)
    history = model.history
    assert model.network.layer_sizes == (64, *best.hidden_layer_sizes, 10)
    assert (model.network.activation, model.network.output) == (best.activation, best.output)
    assert (history["optimizer"], history["epsilon_init"], history["dtype"]) == (
        best.optimizer,
        best.epsilon_init,
        best.dtype,
    )
    assert history["max_iter"] == 1 and history["augment"] == best.augment.copies
    assert model.lam == best.lam and model.thetas[0].dtype == np.dtype(best.dtype)
    # a setting given overrides the preset's even when it is the course's default
    course_like = train(X, y, preset="best", max_iter=1, optimizer="cg", hidden_layer_sizes=(25,), augment=0)
    assert course_like.history["optimizer"] == "cg" and course_like.network.layer_sizes == (64, 25, 10)
    assert "augment" not in course_like.history
    assert options_with("best", lam=0.5, batch_size=20).lam == 0.5
    assert options_with("best", batch_size=20).batch_size == 20


def test_the_course_preset_trains_as_no_preset(digits8_small):
    X, y = digits8_small
    plain = train(X, y, hidden_layer_sizes=(10,), max_iter=15)
    course = train(X, y, hidden_layer_sizes=(10,), max_iter=15, preset="course")
    np.testing.assert_array_equal(plain.thetas[0], course.thetas[0])


def test_an_unknown_preset_is_one_clear_error(digits8_small, capsys):
    X, y = digits8_small
    with pytest.raises(ParameterError, match="unknown preset 'fastest'; choose one of course, best"):
        train(X, y, preset="fastest")
    with pytest.raises(ParameterError, match="preset or options, not both"):
        train(X, y, preset="best", options=DEFAULTS)
    assert_one_line_error(run_cli(capsys, "train", "--preset", "fastest"), "unknown preset", "course, best")


def test_the_command_line_starts_from_a_preset_and_options_given_override_it(capsys, tmp_path):
    best = preset_options("best")
    run = ok_json(
        run_cli(
            capsys,
            *("train", "--data", "digits8", "--preset", "best", "--hidden", "10", "--max-iter", "1"),
            *("--out", tmp_path / "m.npz", "--json"),
        )
    )
    s = run["settings"]
    assert s["preset"] == "best" and s["hidden"] == [10] and s["max_iter"] == 1
    assert (s["optimizer"], s["activation"], s["output"]) == (best.optimizer, best.activation, best.output)
    assert (s["lambda"], s["dtype"], s["augment"]) == (best.lam, best.dtype, best.augment.copies)
    assert s["epsilon_init"] == best.epsilon_init
    help_text = run_cli(capsys, "train", "--help").stdout
    assert "--preset" in help_text and "override the preset's" in " ".join(help_text.split())
