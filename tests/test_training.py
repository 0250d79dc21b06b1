import numpy as np
import pytest

from nnlearn import split, train
from nnlearn.errors import ParameterError

OPTIMIZERS = ["cg", "lbfgs", "fmincg"]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_400_iterations_on_all_5000_digits_reach_the_notebooks_accuracy(digits20, optimizer):
    X, y = digits20
    model = train(X, y, lam=1.0, optimizer=optimizer, max_iter=400, seed=0)
    assert model.score(X, y) >= 0.995
    history = model.history["cost"]
    assert len(history) == model.history["n_iter"] > 300
    assert history[-1] < 0.32 and history[-1] < history[0]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_held_out_accuracy_on_a_stratified_split(digits20, optimizer):
    X_train, X_test, y_train, y_test = split(*digits20, test_size=0.2, seed=0)
    model = train(X_train, y_train, optimizer=optimizer)
    assert model.score(X_test, y_test) >= 0.91


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_same_seed_gives_the_same_weights(digits20, optimizer):
    X, y = digits20
    runs = [train(X[::10], y[::10], optimizer=optimizer, max_iter=15, seed=3) for _ in range(2)]
    for a, b in zip(runs[0].thetas, runs[1].thetas):
        np.testing.assert_array_equal(a, b)
    other = train(X[::10], y[::10], optimizer=optimizer, max_iter=15, seed=4)
    assert not np.array_equal(other.thetas[0], runs[0].thetas[0])


@pytest.mark.parametrize("hidden", [(12, 8), (10, 8, 6)])
def test_deeper_networks_train(hidden):
    from nnlearn import load_digits8

    X, y = load_digits8()
    model = train(X, y, hidden_layer_sizes=hidden, lam=0.1, optimizer="lbfgs", max_iter=150)
    assert model.layer_sizes == (64, *hidden, 10)
    assert model.score(X, y) > 0.9


def test_float32_training_keeps_float32_weights():
    from nnlearn import load_digits8

    X, y = load_digits8()
    model = train(X, y, optimizer="lbfgs", max_iter=60, dtype="float32")
    assert all(theta.dtype == np.float32 for theta in model.thetas)
    assert model.score(X, y) > 0.9


def test_string_labels_become_the_models_classes():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-2, 1, (30, 2)), rng.normal(2, 1, (30, 2))]
    y = np.array(["cat"] * 30 + ["dog"] * 30)
    model = train(X, y, hidden_layer_sizes=(3,), max_iter=50)
    assert model.classes.tolist() == ["cat", "dog"]
    assert model.score(X, y) > 0.9


def test_a_callback_can_stop_training_early():
    from nnlearn import load_digits8

    X, y = load_digits8()
    seen = []

    def stop_after_five(iteration, J, x):
        seen.append(J)
        if iteration == 5:
            raise StopIteration

    for optimizer in OPTIMIZERS:
        seen.clear()
        model = train(X, y, optimizer=optimizer, max_iter=100, callback=stop_after_five)
        assert model.history["n_iter"] == 5 and model.history["interrupted"]
        assert model.history["cost"] == seen


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lam": -1.0}, "lambda"),
        ({"hidden_layer_sizes": (0,)}, "hidden"),
        ({"max_iter": 0}, "max_iter"),
        ({"optimizer": "newton"}, "optimizer"),
        ({"dtype": "int8"}, "dtype"),
    ],
)
def test_bad_settings_are_rejected_before_training(settings, message):
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ParameterError, match=message):
        train(X, y, **settings)


def test_a_single_class_is_rejected():
    from nnlearn.errors import DataError

    with pytest.raises(DataError, match="two classes"):
        train(np.eye(3), np.zeros(3))


@pytest.mark.parametrize("optimizer", ["fmincg", "sgd", "adam", "cg", "lbfgs"])
def test_a_run_resumed_from_a_checkpoint_reaches_the_same_weights(optimizer, tmp_path):
    from nnlearn import load_digits8
    from nnlearn.training import Continuation

    X, y = load_digits8()
    settings = dict(hidden_layer_sizes=(12,), optimizer=optimizer, max_iter=20, seed=5)
    full = train(X, y, **settings)

    def stop_at_eight(iteration, J, x):
        if iteration == 8:
            raise StopIteration

    path = tmp_path / "run.ckpt.npz"
    first = train(
        X,
        y,
        **settings,
        callback=stop_at_eight,
        checkpoint=lambda run: run.save(path, {"optimizer": optimizer}),
    )
    assert first.history["n_iter"] == 8
    _, state = Continuation.load(path)
    seen = []
    resumed = train(X, y, **settings, resume=state, callback=lambda i, J, x: seen.append(i))
    assert resumed.history["cost"] == full.history["cost"]
    assert seen[0] == 9  # the callback sees only the iterations after the checkpoint
    for a, b in zip(resumed.thetas, full.thetas):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def digits8_small():
    from nnlearn import load_digits8

    X, y = load_digits8()
    return X[:400], y[:400]


def test_the_settings_name_every_optimizer_the_optimizers_implement():
    from nnlearn import optim as settings
    from nnlearn.optim import _minimize as optimize
    from nnlearn.optim import _steps as minibatch

    assert settings.FULL_BATCH == optimize.FULL_BATCH
    assert settings.MINI_BATCH == minibatch.MINI_BATCH == tuple(minibatch.STEPS)


def test_options_hold_every_default_and_train_takes_them_whole(digits8_small):
    from nnlearn.training._settings import DEFAULTS, Options

    X, y = digits8_small
    by_keywords = train(
        X, y, hidden_layer_sizes=(10,), lam=1.0, optimizer="lbfgs", max_iter=20, seed=3, activation="tanh"
    )
    by_options = train(
        X, y, options=Options(hidden_layer_sizes=(10,), activation="tanh", optimizer="lbfgs", max_iter=20, seed=3)
    )
    np.testing.assert_array_equal(by_keywords.thetas[0], by_options.thetas[0])
    assert by_options.network.activation == "tanh"
    assert DEFAULTS == Options() and DEFAULTS.hidden_layer_sizes == (25,) and DEFAULTS.epsilon_init == 0.12


def test_train_takes_its_settings_by_keyword_only(digits8_small):
    X, y = digits8_small
    with pytest.raises(TypeError, match="positional"):
        train(X, y, (10,))


@pytest.mark.parametrize("optimizer", ["cg", "lbfgs", "fmincg", "sgd", "adam"])
def test_a_huge_but_legal_lambda_is_one_clear_error(digits8_small, optimizer):
    import warnings

    from nnlearn.errors import TrainingError

    X, y = digits8_small
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no NumPy overflow warnings on the way
        with pytest.raises(TrainingError, match="lambda 1e\\+300 makes the penalty overflow"):
            train(X, y, hidden_layer_sizes=(10,), lam=1e300, optimizer=optimizer, max_iter=5)
