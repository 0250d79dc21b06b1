"""The training settings' declaration reaches every surface: one default and one check each.

The test walks :data:`nnlearn.training.SETTINGS` and, for every setting, checks the
command line's option, the estimator's parameter, the web form's field, the resume table
and the table in docs/settings.md against the declaration: the same default, and a bad
value refused by the same check, named the way each surface names it.
"""

import argparse
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from nnlearn import NeuralNetClassifier
from nnlearn.cli import build_parser
from nnlearn.cli._resuming import RESUMED, RESUMED_BEFORE
from nnlearn.cli._train_options import FLAGS, check_options, cli_default, settle
from nnlearn.errors import ParameterError
from nnlearn.training import DEFAULTS, PRESETS, SETTINGS, Options, train
from nnlearn.training._setting import REQUIRED
from nnlearn.web._limits import TRAIN_FIELDS, WEB_SETTINGS, Limits, form_fields, train_options

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


@pytest.fixture(scope="module")
def digits8_small():
    from nnlearn import load_digits8

    X, y = load_digits8()
    return X[:300], y[:300]


#: A value each setting's check refuses, and what the message says of it.
BAD = {
    "hidden_layer_sizes": ((25, 0), "hidden layer sizes must be positive integers"),
    "activation": ("gelu", "unknown activation 'gelu'"),
    "output": ("linear", "unknown output 'linear'"),
    "lam": (-1.0, "lambda must be a finite number >= 0"),
    "optimizer": ("newton", "unknown optimizer 'newton'"),
    "max_iter": (0, "max_iter must be an integer >= 1"),
    "tol": (-1.0, "tol must be a number >= 0"),
    "seed": (-3, "seed must be an integer from 0 to 2**32 - 1"),
    "dtype": ("float16", "dtype must be float64 or float32"),
    "blas": ("openblas", "unknown blas 'openblas'"),
    "epsilon_init": (-0.5, 'epsilon_init must be a number > 0 or "auto"'),
    "batch_size": (0, "batch_size must be an integer >= 1"),
    "learning_rate": (-0.1, "learning_rate must be a number > 0"),
    "early_stopping": ("yes", "early_stopping must be True or False"),
    "validation_fraction": (1.5, "validation_fraction must lie strictly between 0 and 1"),
    "n_iter_no_change": (0, "n_iter_no_change must be an integer >= 1"),
    "augment": (-1, "augment must be a number of distorted copies >= 0"),
}


def test_every_setting_is_declared_once_with_a_bad_value_here():
    assert list(SETTINGS) == [f.name for f in fields(Options)]
    assert set(BAD) == set(SETTINGS)
    for name, spec in SETTINGS.items():
        assert getattr(DEFAULTS, name) == getattr(Options(), name)
        assert spec.check(getattr(DEFAULTS, name)) == getattr(DEFAULTS.checked(), name)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_library_refuses_a_bad_value_by_the_declared_check(name, digits8_small):
    value, message = BAD[name]
    with pytest.raises(ParameterError, match=re.escape(message)):
        Options(**{name: value}).checked()
    with pytest.raises(ParameterError, match=re.escape(message)):
        train(*digits8_small, **{name: value})


def train_parser():
    return build_parser().verbs["train"]


def option_of(parser, flag):
    return next(action for action in parser._actions if flag in action.option_strings)


@pytest.mark.parametrize("name", [name for name, spec in SETTINGS.items() if spec.flag])
def test_the_command_line_offers_each_setting_from_its_declaration(name):
    spec, parser = SETTINGS[name], train_parser()
    action = option_of(parser, spec.flag)
    assert action.dest == name and action.default is None  # None: a resumed run can tell "not given"
    assert spec.help in action.help and "(default: " in action.help
    args = parser.parse_args([])
    given = settle(args)
    assert given == {} and getattr(args, name) == cli_default(name)
    options = check_options(args, given, 0)
    assert getattr(options, name) == getattr(DEFAULTS, name) or (name == "augment" and options.augment is None)


@pytest.mark.parametrize("name", [name for name, spec in SETTINGS.items() if spec.flag])
def test_the_command_line_refuses_a_bad_value_by_the_declared_check_named_by_its_flag(name):
    spec, parser = SETTINGS[name], train_parser()
    value, message = BAD[name]
    args = parser.parse_args([])
    settle(args)
    setattr(args, name, value)
    with pytest.raises(ParameterError) as refused:
        check_options(args, {}, 0)
    assert str(refused.value).startswith(f"{spec.flag}: ") and message in str(refused.value)


def test_the_command_line_has_no_setting_option_outside_the_declaration():
    declared = {spec.flag for spec in SETTINGS.values() if spec.flag}
    own = {"--data", "--preset", "--test-size", "--framing", "--out", "--report", "--checkpoint"}
    own |= {"--checkpoint-every", "--resume", "--force", "--quiet", "--cluster", "--json", "--help"}
    flags = {flag for action in train_parser()._actions for flag in action.option_strings if flag.startswith("--")}
    flags -= {"--no-early-stopping", "-h"}
    assert flags == declared | own
    assert FLAGS == {name: spec.flag for name, spec in SETTINGS.items() if spec.flag}


@pytest.mark.parametrize("name", [name for name, spec in SETTINGS.items() if spec.estimator])
def test_the_estimator_has_each_setting_as_a_parameter_defaulting_to_the_preset(name):
    spec = SETTINGS[name]
    params = NeuralNetClassifier().get_params()
    default = DEFAULTS.seed if name == "seed" else None  # random_state keeps scikit-learn's None
    assert params[spec.estimator] == default
    chosen = NeuralNetClassifier()._options()
    expected = spec.estimator_default if spec.estimator_default is not None else getattr(DEFAULTS, name)
    assert getattr(chosen, name) == spec.check(expected)
    best = NeuralNetClassifier(preset="best")._options()
    if name != "seed":
        assert getattr(best, name) == getattr(PRESETS["best"].checked(), name)


@pytest.mark.parametrize("name", [name for name, spec in SETTINGS.items() if spec.estimator])
def test_the_estimator_refuses_a_bad_value_by_the_declared_check_named_by_its_parameter(name):
    spec = SETTINGS[name]
    value, message = BAD[name]
    if name == "seed":  # scikit-learn's random_state: a negative int is its own error
        return
    with pytest.raises(ParameterError, match=re.escape(message)) as refused:
        NeuralNetClassifier(**{spec.estimator: value})._options()
    if spec.estimator != spec.title:
        assert str(refused.value).startswith(f"{spec.estimator}: ")


def test_the_estimator_has_no_setting_parameter_outside_the_declaration():
    settings = {spec.estimator for spec in SETTINGS.values() if spec.estimator}
    assert set(NeuralNetClassifier().get_params()) == settings | {"preset", "warm_start", "verbose", "cluster"}


@pytest.mark.parametrize("name", [name for name, spec in SETTINGS.items() if spec.web])
def test_the_web_form_offers_each_setting_from_its_declaration(name):
    spec = SETTINGS[name]
    key = spec.web.key
    assert WEB_SETTINGS[key] == name
    default = spec.web.default if spec.web.default is not None else getattr(DEFAULTS, name)
    assert TRAIN_FIELDS[key] == (list(default) if isinstance(default, tuple) else default)
    assert key in {field["name"] for field in form_fields(Limits())}
    _, options = train_options({}, Limits())
    assert getattr(options, name) == spec.check(default)
    value, message = BAD[name]
    with pytest.raises(ParameterError, match=re.escape(message)):
        train_options({key: list(value) if isinstance(value, tuple) else value}, Limits())


def test_the_web_form_keeps_its_own_bounds_where_the_declaration_says():
    limited = {SETTINGS[name].web.limit for name in WEB_SETTINGS.values()} - {None}
    assert limited <= {field.name for field in fields(Limits)}
    with pytest.raises(ParameterError, match="max_iter: 7 iterations; this server runs 5 at most"):
        train_options({"max_iter": 7}, Limits(max_iter=5))


def test_the_resume_table_is_the_declarations():
    kept = {name for name, spec in SETTINGS.items() if spec.resumed == "kept"}
    assert kept <= set(RESUMED)
    for name in kept:
        spec = SETTINGS[name]
        assert RESUMED[name] == (spec.flag, spec.checkpoint)
        if spec.before is REQUIRED:
            assert spec.checkpoint not in RESUMED_BEFORE
        else:
            assert RESUMED_BEFORE[spec.checkpoint] == spec.before
    assert set(RESUMED) - kept == {"data", "test_size", "framing", "preset"}  # the verb's own
    assert {SETTINGS[name].resumed for name in SETTINGS} <= {"kept", "extended", "free"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_values_of_the_declaration_that_every_surface_takes(name):
    from dataclasses import replace

    from nnlearn.cli._train_options import preset_values

    preset = PRESETS[name]
    assert isinstance(preset, Options)
    assert NeuralNetClassifier(preset=name)._options() == replace(preset.checked(), seed=0)
    args = train_parser().parse_args([])
    settle(args, name)
    assert check_options(args, {}, 0) == preset.checked()
    assert set(preset_values(name)) == set(FLAGS)


def settings_table():
    """The table docs/settings.md shows, made from the declaration."""
    lines = ["| setting | default | command line | estimator | web form | checkpoint | on --resume | what it is |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, spec in SETTINGS.items():
        default = getattr(DEFAULTS, name)
        estimator = spec.estimator or ""
        if spec.estimator_default is not None:
            estimator += f" ({spec.estimator_default!r})"
        web = "" if spec.web is None else spec.web.key + ("" if spec.web.default is None else f" ({spec.web.default})")
        cells = [f"`{name}`", f"`{default!r}`", spec.flag or "", estimator, web, spec.checkpoint or "", spec.resumed]
        lines.append("| " + " | ".join(cells + [spec.help.replace("|", "\\|")]) + " |")
    return "\n".join(lines)


def test_the_docs_table_is_the_declarations():
    text = DOCS.read_text()
    start, end = "<!-- settings table: made from nnlearn.training.SETTINGS -->", "<!-- end of the settings table -->"
    shown = text[text.index(start) + len(start) : text.index(end)].strip()
    assert shown == settings_table(), "docs/settings.md's table is not the declaration's: python -m tests.test_settings"


def test_the_parser_test_sees_options():
    # a check that option_of can fail: an unknown flag is no option
    with pytest.raises(StopIteration):
        option_of(train_parser(), "--no-such-option")
    assert isinstance(option_of(train_parser(), "--early-stopping"), argparse.BooleanOptionalAction)


def test_a_resumed_run_keeps_a_setting_recorded_as_none(tmp_path, capsys):
    from .helpers import assert_one_line_error, run_cli

    ckpt, out = tmp_path / "run.ckpt", tmp_path / "m.npz"
    args = ("train", "--data", "digits8", "--optimizer", "adam", "--max-iter", "2", "--quiet")
    assert run_cli(capsys, *args, "--checkpoint", ckpt, "--out", out).returncode == 0
    # the default learning rate is recorded as None: a resumed run may not change it
    refused = run_cli(capsys, "train", "--resume", ckpt, "--learning-rate", "0.5", "--out", tmp_path / "r.npz")
    assert_one_line_error(refused, "--learning-rate 0.5 differs from the checkpoint's None")
    # nor may a preset fill it in
    resumed = run_cli(capsys, "train", "--resume", ckpt, "--preset", "best", "--json", "--out", tmp_path / "p.npz")
    assert resumed.returncode == 0, resumed.stderr
    settings = json.loads(resumed.stdout)["settings"]
    assert settings["learning_rate"] is None and settings["hidden"] == [25] and settings["optimizer"] == "adam"


if __name__ == "__main__":  # python -m tests.test_settings: write the table into docs/settings.md
    START, END = "<!-- settings table: made from nnlearn.training.SETTINGS -->", "<!-- end of the settings table -->"
    text = DOCS.read_text()
    head, tail = text[: text.index(START) + len(START)], text[text.index(END) :]
    DOCS.write_text(f"{head}\n{settings_table()}\n{tail}")
