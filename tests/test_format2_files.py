"""Model files and checkpoints written by nnlearn 0.2 (format 2) before the package was laid
out anew: they store no module paths, so they load, predict and resume as they did."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnlearn import load_digits20, load_model

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["model-tanh", "model-adam"])
def test_a_format_2_model_file_written_before_loads_and_predicts_the_same(name):
    model = load_model(DATA / f"format2-{name}.npz")
    expected = np.load(DATA / "format2-expected.npz")
    X, _ = load_digits20()
    np.testing.assert_array_equal(model.predict_proba(X[::10]), expected[f"{name}-proba"])
    np.testing.assert_array_equal(model.predict(X[::10]), expected[f"{name}-labels"])


@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_a_format_2_checkpoint_written_before_resumes_to_its_model(tmp_path, name):
    # Each checkpoint holds its finished run: resuming it ends at that run's weights (bit for
    # bit with the BLAS kernel that wrote it; lbfgs replays its iterations, so another
    # kernel may differ in the last digits).
    model = {"lbfgs": "model-tanh", "adam": "model-adam"}[name]
    out = tmp_path / "resumed.npz"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnlearn",
            "train",
            "--resume",
            str(DATA / f"format2-ck-{name}.npz"),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    before, after = load_model(DATA / f"format2-{model}.npz"), load_model(out)
    for theta_before, theta_after in zip(before.thetas, after.thetas):
        np.testing.assert_allclose(theta_after, theta_before, rtol=0, atol=1e-9)
