"""``nnlearn gradcheck`` on networks of every kind and size."""

import json

import pytest

from .helpers import run_cli


@pytest.mark.parametrize(("activation", "output"), [("tanh", "softmax"), ("relu", "sigmoid")])
def test_gradcheck_checks_every_kind(capsys, activation, output):
    result = run_cli(
        capsys, "gradcheck", "--hidden", "5", "4", "--activation", activation, "--output", output, "--json"
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] and payload["relative_difference"] < 1e-9
    assert (payload["activation"], payload["output"]) == (activation, output)


def test_a_huge_gradcheck_is_refused_before_any_work(capsys):
    result = run_cli(capsys, "gradcheck", "--hidden", "5000", "5000")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "25,040,003 weights" in result.stderr and "20,000" in result.stderr
