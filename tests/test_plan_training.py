"""The plan a training run uses: recorded with the model and its checkpoints, reused on
resume, given back to repeat a run; examples on an accelerator trained where they are."""

import numpy as np
import pytest

from nnlearn import load_model, planner, train, training
from nnlearn.core import Plan
from nnlearn.errors import ParameterError
from nnlearn.modelio import load_checkpoint, save_checkpoint

# Not the fixed forms of either dtype: C order for float64, the other gradient, padded, one shard.
ODD = Plan("C", "(a' delta)'", 8, 1)


@pytest.fixture(autouse=True)
def planning_on(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLEARN_PLAN_CACHE", str(tmp_path / "plans"))
    monkeypatch.delenv("NNLEARN_PLAN", raising=False)


@pytest.fixture
def odd_plans(monkeypatch):
    """The planner's measurement replaced: "auto" gives ODD, and each call is counted."""
    calls = []

    def plan_for(X, network, threads=None, *, sharded=True):
        calls.append(X.shape)
        return ODD

    monkeypatch.setattr(planner, "plan_for", plan_for)
    return calls


SETTINGS = dict(hidden_layer_sizes=(10,), optimizer="lbfgs", max_iter=12, seed=1)


def test_the_plan_in_use_is_recorded_with_the_model_and_survives_its_file(digits8, odd_plans, tmp_path):
    X, y = digits8
    model = train(X, y, **SETTINGS)
    assert odd_plans == [X.shape] and model.history["plan"] == ODD.to_dict()
    loaded = load_model(model.save(tmp_path / "m.npz"))
    assert loaded.history["plan"] == ODD.to_dict()
    # Given back, the recorded plan repeats the run bit for bit without planning again.
    again = train(X, y, **SETTINGS, plan=loaded.history["plan"])
    assert len(odd_plans) == 1
    assert all(np.array_equal(a, b) for a, b in zip(again.thetas, model.thetas))


def test_off_and_the_environment_give_the_fixed_forms(digits20, monkeypatch):
    X, y = digits20[0][:2000], digits20[1][:2000]  # big enough to be planned
    measured = []
    monkeypatch.setattr(planner, "measure", lambda *args, **kwargs: measured.append(1) or pytest.fail("measured"))
    fixed = Plan.fixed(np.float64).to_dict()
    settings = {**SETTINGS, "max_iter": 2}
    assert train(X, y, **settings, plan="off").history["plan"] == fixed
    monkeypatch.setenv("NNLEARN_PLAN", "off")
    assert train(X, y, **settings).history["plan"] == fixed
    assert measured == []
    monkeypatch.delenv("NNLEARN_PLAN")
    with pytest.raises(pytest.fail.Exception, match="measured"):
        train(X, y, **settings)  # planning on and nothing cached: this shape is measured
    with pytest.raises(ParameterError, match="plan must be"):
        train(X, y, **settings, plan="fastest")


def test_a_plan_changes_the_weights_in_their_last_bits_only(digits8):
    X, y = digits8
    fixed = train(X, y, **SETTINGS, plan="off")
    odd = train(X, y, **SETTINGS, plan=ODD)
    assert odd.history["plan"] == ODD.to_dict()
    # Used, not only recorded: other sums give other last bits (6e-14 apart here, weights ~5).
    assert not all(np.array_equal(a, b) for a, b in zip(odd.thetas, fixed.thetas))
    for a, b in zip(odd.thetas, fixed.thetas):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)


@pytest.mark.parametrize("optimizer", ["lbfgs", "fmincg"])
def test_a_resumed_run_reuses_its_checkpoints_plan(digits8, odd_plans, monkeypatch, optimizer, tmp_path):
    X, y = digits8
    settings = {**SETTINGS, "optimizer": optimizer}
    full = train(X, y, **settings)
    saved = []

    def stop_after_five(iteration, J, x):
        if iteration == 5:
            raise StopIteration

    train(X, y, **settings, callback=stop_after_five, checkpoint=lambda state: saved.append(state))
    assert saved[-1]["plan"] == ODD.to_dict()
    path = save_checkpoint(tmp_path / "run.ckpt.npz", {"optimizer": optimizer}, saved[-1])
    _, state = load_checkpoint(path)
    # The machine now plans otherwise: the resumed run must keep the checkpoint's forms.
    monkeypatch.setattr(planner, "plan_for", lambda *args, **kwargs: Plan.fixed(np.float64))
    resumed = train(X, y, **settings, resume=state)
    assert resumed.history["plan"] == ODD.to_dict()
    assert all(np.array_equal(a, b) for a, b in zip(resumed.thetas, full.thetas))


def test_a_checkpoint_with_a_broken_plan_is_refused(digits8, odd_plans, tmp_path):
    from nnlearn.errors import ModelFileError

    X, y = digits8
    saved = []
    train(X, y, **SETTINGS, checkpoint=lambda state: saved.append(state))
    state = {**saved[-1], "plan": {**ODD.to_dict(), "pad": 0}}
    with pytest.raises(ModelFileError, match="pad"):
        save_checkpoint(tmp_path / "run.ckpt.npz", {"optimizer": "lbfgs"}, state)


def test_mini_batch_runs_record_the_fixed_forms_they_use(digits8, odd_plans):
    X, y = digits8
    model = train(X, y, hidden_layer_sizes=(10,), optimizer="adam", max_iter=2, seed=1)
    assert model.history["plan"] == Plan.fixed(np.float64).to_dict() and odd_plans == []


def test_examples_on_an_accelerator_are_trained_through_the_array_api(digits8, monkeypatch):
    """No GPU here: a PyTorch CPU tensor stands for one, taken for an accelerator's array."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(training, "on_accelerator", lambda X: True)
    X, y = digits8
    on_device = train(torch.from_numpy(X), torch.from_numpy(y), **SETTINGS)
    monkeypatch.undo()
    on_host = train(X, y, **SETTINGS, plan="off")
    assert on_device.history["plan"] == Plan.fixed(np.float64).to_dict()
    assert isinstance(on_device.thetas[0], np.ndarray)
    for a, b in zip(on_device.thetas, on_host.thetas):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    assert on_device.score(X, y) == on_host.score(X, y)


def test_examples_on_an_accelerator_refuse_what_needs_them_in_memory(digits8, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(training, "on_accelerator", lambda X: True)
    X, y = digits8
    for extra in ({"early_stopping": True}, {"augment": 1}):
        with pytest.raises(ParameterError, match="accelerator"):
            train(torch.from_numpy(X), y, **SETTINGS, **extra)
    with pytest.raises(ParameterError, match="mini-batch"):
        train(torch.from_numpy(X), y, hidden_layer_sizes=(10,), optimizer="adam", max_iter=2)
