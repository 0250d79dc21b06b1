"""Property tests: the maths and the loaders hold over random shapes, values and bytes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlearn import Model
from nnlearn.core import cost, cost_and_gradient, init_random, one_hot, pack, unpack
from nnlearn.datasets import load_csv, load_mat, load_npz
from nnlearn.errors import NNLearnError
from nnlearn.gradcheck import numerical_gradient, relative_difference
from nnlearn.modelio import load_model, read_octave_weights

layer_sizes = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)
lams = st.floats(0.0, 10.0)


def problem(sizes, seed, m):
    rng = np.random.default_rng(seed)
    thetas = init_random(sizes, epsilon=1.0, rng=rng)
    X = rng.normal(size=(m, sizes[0]))
    Y = one_hot(rng.integers(0, sizes[-1], m), np.arange(sizes[-1]))[1]
    return thetas, X, Y


@settings(max_examples=40, deadline=None)
@given(sizes=layer_sizes, lam=lams, seed=st.integers(0, 2**32 - 1), m=st.integers(1, 8))
def test_gradient_check_passes_for_random_networks(sizes, lam, seed, m):
    thetas, X, Y = problem(sizes, seed, m)
    _, grads = cost_and_gradient(thetas, X, Y, lam)
    numgrad = numerical_gradient(lambda v: cost(unpack(v, sizes), X, Y, lam), pack(thetas))
    grad = pack(grads)
    # Where the gradient vanishes (tiny networks, saturated units), compare absolutely.
    if np.linalg.norm(grad) < 1e-6:
        assert np.linalg.norm(numgrad - grad) < 1e-8
    else:
        assert relative_difference(numgrad, grad) < 1e-6


@settings(max_examples=50, deadline=None)
@given(sizes=layer_sizes, order=st.sampled_from("CF"), seed=st.integers(0, 2**32 - 1))
def test_packing_round_trips(sizes, order, seed):
    thetas = init_random(sizes, rng=seed)
    restored = unpack(pack(thetas, order), sizes, order)
    assert all(np.array_equal(a, b) for a, b in zip(thetas, restored))


@settings(max_examples=30, deadline=None)
@given(sizes=layer_sizes, scale=st.sampled_from([1e2, 1e4, 1e6]), seed=st.integers(0, 2**32 - 1))
def test_extreme_weights_and_inputs_keep_cost_and_gradient_finite(sizes, scale, seed):
    thetas, X, Y = problem(sizes, seed, m=5)
    J, grads = cost_and_gradient([t * scale for t in thetas], X * scale, Y, 1.0)
    assert np.isfinite(J)
    assert all(np.all(np.isfinite(g)) for g in grads)


LOADERS = [
    (load_csv, ".csv"),
    (load_npz, ".npz"),
    (load_mat, ".mat"),
    (load_model, ".npz"),
    (read_octave_weights, ".mat"),
]


def check_loaded(loader, loaded):
    """What a loader returns when it does not refuse a file is what it documents."""
    if loader is load_model:
        assert isinstance(loaded, Model)
        assert all(np.all(np.isfinite(theta)) for theta in loaded.thetas)
    elif loader is read_octave_weights:
        assert loaded and all(theta.ndim == 2 and theta.dtype == np.float64 for theta in loaded)
        assert all(np.all(np.isfinite(theta)) for theta in loaded)
    else:
        X, y = loaded
        assert X.ndim == 2 and X.shape[0] == y.shape[0] >= 1 and X.shape[1] >= 1
        assert X.dtype.kind == "f" and np.all(np.isfinite(X))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), which=st.integers(0, len(LOADERS) - 1))
def test_loaders_given_random_bytes_load_or_raise_the_documented_error(tmp_path, data, which):
    loader, suffix = LOADERS[which]
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try:
        loaded = loader(path)
    except NNLearnError:
        return
    check_loaded(loader, loaded)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory, ex4weights):
    from scipy.io import savemat

    from nnlearn import Model, save_model

    folder = tmp_path_factory.mktemp("valid")
    X, y = np.arange(12.0).reshape(4, 3), np.array([1, 2, 1, 2])
    np.savez(folder / "d.npz", X=X, y=y)
    savemat(folder / "d.mat", {"X": X, "y": y[:, None]})
    (folder / "d.csv").write_text("\n".join(",".join(map(str, [*row, label])) for row, label in zip(X, y)))
    save_model(Model(init_random((3, 2, 2), rng=0), np.array([1, 2])), folder / "m.npz")
    return {
        load_csv: (folder / "d.csv").read_bytes(),
        load_npz: (folder / "d.npz").read_bytes(),
        load_mat: (folder / "d.mat").read_bytes(),
        load_model: (folder / "m.npz").read_bytes(),
        read_octave_weights: ex4weights.read_bytes(),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(LOADERS) - 1), cut=st.floats(0.0, 1.0), flip=st.integers(0, 10**6))
def test_loaders_given_truncated_or_corrupted_files_raise_the_documented_error(tmp_path, valid_files, which, cut, flip):
    loader, suffix = LOADERS[which]
    data = bytearray(valid_files[loader])
    data = data[: int(len(data) * cut)]
    if data and flip % 2:
        data[flip % len(data)] ^= 0xFF
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(bytes(data))
    try:
        loaded = loader(path)
    except NNLearnError:
        return
    check_loaded(loader, loaded)
