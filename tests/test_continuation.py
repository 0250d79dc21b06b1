"""One way to continue a run: a Continuation, for train, checkpoints, files and the estimator."""

import warnings

import numpy as np
import pytest

from nnlearn import NeuralNetClassifier, load_digits8, train
from nnlearn.core import pack
from nnlearn.errors import ShapeError
from nnlearn.training import Continuation, ResumeWarning
from nnlearn.training._exactness import NOT_EXACT_SINCE

SETTINGS = dict(hidden_layer_sizes=(10,), optimizer="fmincg", max_iter=8, seed=2)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits8()
    return X[:400], y[:400]


def interrupted_at(X, y, settings, iteration):
    """The continuations a run hands out, stopped after ``iteration``."""
    kept = []

    def stop(i, J, x):
        if i == iteration:
            raise StopIteration

    train(X, y, **settings, callback=stop, checkpoint=kept.append)
    return kept


@pytest.mark.parametrize("optimizer", ["fmincg", "lbfgs", "adam"])
def test_a_run_resumed_from_its_continuation_ends_at_the_uninterrupted_weights(digits, optimizer):
    X, y = digits
    settings = {**SETTINGS, "optimizer": optimizer}
    whole = train(X, y, **settings)
    kept = interrupted_at(X, y, settings, 3)
    assert [c.n_iter for c in kept] == [1, 2, 3] and all(isinstance(c, Continuation) for c in kept)
    assert kept[-1].exactness["exact.data_sha256"] and kept[-1].exactness["exact.shards"] >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResumeWarning)  # the same data, machine and libraries: exact
        resumed = train(X, y, **settings, resume=kept[-1])
    assert resumed.history["cost"] == whole.history["cost"]
    assert all(np.array_equal(a, b) for a, b in zip(resumed.thetas, whole.thetas))


def test_a_continuation_goes_through_a_checkpoint_file_whole(digits, tmp_path):
    X, y = digits
    kept = interrupted_at(X, y, SETTINGS, 2)
    path = kept[-1].save(tmp_path / "run.ckpt", {"optimizer": "fmincg", "data": "digits8"})
    settings, loaded = Continuation.load(path)
    assert settings == {"optimizer": "fmincg", "data": "digits8"}
    assert loaded.exactness == kept[-1].exactness and loaded.n_iter == 2
    np.testing.assert_array_equal(loaded.x, kept[-1].x)
    resumed = train(X, y, **SETTINGS, resume=loaded)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.thetas, train(X, y, **SETTINGS).thetas))
    with pytest.raises(ValueError, match="no optimiser state"):
        Continuation.from_weights(resumed.thetas).save(tmp_path / "w.ckpt", {})


def test_the_library_says_when_a_resumed_run_cannot_be_exact_and_keeps_saying_so(digits):
    X, y = digits
    kept = interrupted_at(X, y, SETTINGS, 2)
    other = X.copy()
    other[0, 0] += 1.0
    later = []
    with pytest.warns(ResumeWarning, match="the data differ"):
        train(other, y, **SETTINGS, resume=kept[-1], checkpoint=later.append)
    assert later[-1].exactness[NOT_EXACT_SINCE] == "iteration 2: the data changed"


def test_a_continuation_of_weights_alone_starts_afresh_from_them(digits):
    X, y = digits
    first = train(X, y, **SETTINGS)
    warm = train(X, y, **SETTINGS, resume=Continuation.from_weights(first.thetas))
    assert warm.history["n_iter"] == SETTINGS["max_iter"]
    assert warm.history["cost"][0] < first.history["cost"][0]
    assert warm.history["cost"][0] <= first.history["cost"][-1] * (1 + 1e-9)
    np.testing.assert_array_equal(Continuation.from_weights(first.thetas).x, pack(first.thetas))
    with pytest.raises(ShapeError, match="the weights to go on from are"):
        train(X, y, **{**SETTINGS, "hidden_layer_sizes": (11,)}, resume=Continuation.from_weights(first.thetas))


def test_partial_fit_goes_on_from_its_continuation_as_one_run_would(digits):
    X, y = digits
    clf = NeuralNetClassifier(optimizer="adam", hidden_layer_sizes=(10,), random_state=2)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    # three epochs of one uninterrupted run on the same data, from the same seed
    whole = NeuralNetClassifier(optimizer="adam", hidden_layer_sizes=(10,), random_state=2, max_iter=3, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole.fit(X, y)
    assert whole.loss_curve_ == clf.loss_curve_
    assert all(np.array_equal(a, b) for a, b in zip(whole.thetas_, clf.thetas_))


def test_warm_start_goes_on_counting_as_scikit_learn_does(digits):
    X, y = digits
    clf = NeuralNetClassifier(hidden_layer_sizes=(10,), max_iter=5, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
        first = list(clf.loss_curve_)
        clf.fit(X, y)
    assert clf.n_iter_ == 10 and clf.loss_curve_[:5] == first and len(clf.loss_curve_) == 10
    clf.set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert clf.n_iter_ == 5 and clf.loss_curve_ == first
