"""The same weights from the same inputs: one fixed form of each of the kernel's products,
equal to the reference for every kind and depth; nothing measured at run time, so a busy
machine trains what an idle one does; files of nnlearn 0.2, which recorded its planner's
choice, still load and resume."""

import itertools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from nnlearn import load_model, train
from nnlearn.core import ACTIVATIONS, OUTPUTS, Network, data_term, from_sums, init_random, one_hot, pack
from nnlearn.core import backprop as reference
from nnlearn.errors import ParameterError
from nnlearn.training import Continuation, ResumeWarning
from nnlearn.training import _train as training
from nnlearn.training._checkpoints import save_checkpoint

from .helpers import ENV, nnlearn_script

KINDS = list(itertools.product(ACTIVATIONS, OUTPUTS))
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def problem(rng, network, m=60, dtype=np.float64):
    X = rng.standard_normal((m, network.layer_sizes[0])).astype(dtype)
    Y = one_hot(np.arange(m) % network.layer_sizes[-1])[1].astype(dtype)
    thetas = init_random(network, epsilon=0.5, rng=rng, dtype=dtype)
    return thetas, X, Y


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("hidden", [(9,), (9, 6), (7, 10, 5)], ids=["1", "2", "3"])
@pytest.mark.parametrize("kind", KINDS, ids="/".join)
def test_the_kernel_equals_the_reference_backpropagation(rng, kind, hidden, weighted):
    network = Network((11, *hidden, 4), *kind)
    for dtype in (np.float64, np.float32):
        thetas, X, Y = problem(rng, network, dtype=dtype)
        w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype) if weighted else None
        M = X.shape[0] if w is None else float(np.sum(w))
        as64 = [t.astype(np.float64) for t in thetas]
        J_ref, grads_ref = reference.cost_and_gradient(
            as64, X.astype(np.float64), Y.astype(np.float64), 1.0, None if w is None else w.astype(np.float64),
            network=network,
        )  # fmt: skip
        tolerance = TOLERANCE[dtype]
        J, grads = from_sums(*data_term(thetas, X, Y, w, network=network), thetas, 1.0, M)
        assert J == pytest.approx(J_ref, rel=tolerance)
        assert [g.shape for g in grads] == [t.shape for t in thetas] and all(g.dtype == dtype for g in grads)
        scale = np.abs(pack(grads_ref)).max()
        np.testing.assert_allclose(pack(grads), pack(grads_ref), rtol=tolerance, atol=tolerance * scale)


def _saturate(cores):
    """Processes that keep ``cores`` cores busy until killed."""
    spin = "import time\nwhile True: sum(range(10000))"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores)]


@pytest.mark.slow
def test_a_busy_machine_trains_the_weights_an_idle_one_does(tmp_path):
    # Each run gets a fresh cache directory, as a new user's would: nothing read from a
    # cache and nothing measured may decide how the products are computed.
    args = ("train", "--optimizer", "lbfgs", "--hidden", "100", "--max-iter", "60", "--quiet")
    outs = []
    for name, busy in (("idle", 0), ("busy", os.cpu_count() or 2)):
        spinners = _saturate(busy)
        try:
            time.sleep(0.2 if busy else 0)
            cache = tmp_path / f"cache-{name}"
            env_out = tmp_path / f"{name}.npz"
            done = subprocess.run(
                [sys.executable, "-m", "nnlearn", *args, "--out", str(env_out)],
                env={**ENV, "NNLEARN_CACHE_DIR": str(cache), "OPENBLAS_NUM_THREADS": "2"},
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        assert done.returncode == 0, done.stderr
        outs.append(load_model(env_out))
    idle, busy = outs
    assert all(np.array_equal(a, b) for a, b in zip(idle.thetas, busy.thetas))
    assert "plan" not in busy.history


def test_a_checkpoint_of_nnlearn_0_2_resumes_and_says_when_its_forms_were_not_the_fixed_ones(digits8, tmp_path):
    X, y = digits8
    settings = dict(hidden_layer_sizes=(10,), optimizer="fmincg", max_iter=6, seed=1)
    states = []
    train(X, y, **settings, checkpoint=states.append)
    whole = train(X, y, **{**settings, "max_iter": 9})
    # nnlearn 0.2 added its plan to every state; the fixed forms resume silently and exactly
    fixed = {"hidden_order": "F", "gradient": "delta' a", "pad": 1, "shards": None}
    settings_then = {"optimizer": "fmincg", **states[-1].exactness}
    path = save_checkpoint(tmp_path / "old.npz", settings_then, {**states[-1].state, "plan": fixed})
    _, state = Continuation.load(path)
    resumed = train(X, y, **{**settings, "max_iter": 9}, resume=state)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.thetas, whole.thetas))
    measured = {**fixed, "hidden_order": "C", "pad": 8}
    path = save_checkpoint(tmp_path / "measured.npz", settings_then, {**states[-1].state, "plan": measured})
    _, state = Continuation.load(path)
    with pytest.warns(ResumeWarning, match="measured product forms"):
        resumed = train(X, y, **{**settings, "max_iter": 9}, resume=state)
    np.testing.assert_allclose(pack(resumed.thetas), pack(whole.thetas), rtol=0, atol=1e-9)


def test_a_model_of_nnlearn_0_2_with_its_plan_loads(tmp_path):
    model = load_model(os.path.join(os.path.dirname(__file__), "data", "format2-model-tanh.npz"))
    assert model.history["plan"]["hidden_order"] == "F"  # what its planner recorded, kept as read
    saved = load_model(model.save(tmp_path / "again.npz"))
    assert saved.history["plan"] == model.history["plan"]


def test_the_command_line_trains_the_same_weights_twice(tmp_path):
    first = nnlearn_script("train", "--data", "digits8", "--hidden", "12", "--max-iter", "20", "--out", "a.npz",
                           "--quiet", cwd=tmp_path)  # fmt: skip
    second = nnlearn_script("train", "--data", "digits8", "--hidden", "12", "--max-iter", "20", "--out", "b.npz",
                            "--quiet", cwd=tmp_path)  # fmt: skip
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert all(np.array_equal(p, q) for p, q in zip(a.thetas, b.thetas))


def test_examples_on_an_accelerator_are_trained_through_the_array_api(digits8, monkeypatch):
    """No GPU here: a PyTorch CPU tensor stands for one, taken for an accelerator's array."""
    torch = pytest.importorskip("torch")
    settings = dict(hidden_layer_sizes=(10,), optimizer="lbfgs", max_iter=12, seed=1)
    monkeypatch.setattr(training, "on_accelerator", lambda X: True)
    X, y = digits8
    on_device = train(torch.from_numpy(X), torch.from_numpy(y), **settings)
    monkeypatch.undo()
    on_host = train(X, y, **settings)
    assert isinstance(on_device.thetas[0], np.ndarray)
    for a, b in zip(on_device.thetas, on_host.thetas):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    assert on_device.score(X, y) == on_host.score(X, y)


def test_examples_on_an_accelerator_refuse_what_needs_them_in_memory(digits8, monkeypatch):
    torch = pytest.importorskip("torch")
    settings = dict(hidden_layer_sizes=(10,), optimizer="lbfgs", max_iter=12, seed=1)
    monkeypatch.setattr(training, "on_accelerator", lambda X: True)
    X, y = digits8
    for extra in ({"early_stopping": True}, {"augment": 1}):
        with pytest.raises(ParameterError, match="accelerator"):
            train(torch.from_numpy(X), y, **settings, **extra)
    with pytest.raises(ParameterError, match="mini-batch"):
        train(torch.from_numpy(X), y, hidden_layer_sizes=(10,), optimizer="adam", max_iter=2)
