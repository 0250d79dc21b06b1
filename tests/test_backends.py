"""Arrays on any backend: the reference and the objective with PyTorch tensors (on the CPU here)."""

import itertools
import os
import sys
from dataclasses import replace

import numpy as np
import pytest

from nnlearn.compute._backends import (
    ArrayDataTerm,
    DeviceArray,
    device_dataset,
    is_device_array,
    on_accelerator,
)
from nnlearn.compute._dataterm import full_objective
from nnlearn.compute._threads import ShardedDataTerm
from nnlearn.core import ACTIVATIONS, OUTPUTS, Network, cost, cost_and_gradient, init_random, one_hot, pack
from nnlearn.core import backprop as reference
from nnlearn.core.arrayapi import namespace_of
from nnlearn.errors import DataError, ParameterError
from nnlearn.optim._minimize import minimize

try:
    import torch
except ImportError:  # CI installs PyTorch (the CPU build) and must run these tests
    if os.environ.get("CI") or os.environ.get("NNLEARN_BROWSER_REQUIRED"):
        raise
    pytest.skip('PyTorch is not installed: pip install "nnlearn[bench]"', allow_module_level=True)

KINDS = list(itertools.product(ACTIVATIONS, OUTPUTS))
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tensors are tiny: PyTorch's other OpenMP threads would only wait (for 0.25 s
    at times on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def problem(rng, network, m=50, dtype=np.float64):
    X = rng.standard_normal((m, network.layer_sizes[0])).astype(dtype)
    Y = one_hot(np.arange(m) % network.layer_sizes[-1])[1].astype(dtype)
    return init_random(network, epsilon=0.5, rng=rng, dtype=dtype), X, Y


def tensors(*arrays):
    return [None if a is None else torch.from_numpy(a) for a in arrays]


def assert_close(J, grads, J_ref, grads_ref, tolerance):
    assert J == pytest.approx(J_ref, rel=tolerance)
    scale = np.abs(pack(grads_ref)).max()
    np.testing.assert_allclose(pack(grads), pack(grads_ref), rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("hidden", [(9,), (9, 6), (7, 10, 5)], ids=["1", "2", "3"])
@pytest.mark.parametrize("kind", KINDS, ids="/".join)
def test_torch_tensors_give_numpys_cost_and_gradient(rng, kind, hidden):
    network = Network((11, *hidden, 4), *kind)
    for dtype, weighted in itertools.product((np.float64, np.float32), (False, True)):
        thetas, X, Y = problem(rng, network, dtype=dtype)
        w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype) if weighted else None
        J_ref, grads_ref = reference.cost_and_gradient(thetas, X, Y, 1.0, w, network=network)
        for function in (reference.cost_and_gradient, cost_and_gradient):  # the reference, and the objective
            J, grads = function(tensors(*thetas), *tensors(X, Y), 1.0, *tensors(w), network=network)
            assert all(isinstance(g, torch.Tensor) and g.dtype == getattr(torch, np.dtype(dtype).name) for g in grads)
            assert_close(J, [g.numpy() for g in grads], J_ref, grads_ref, TOLERANCE[dtype])
        J_only = cost(tensors(*thetas), *tensors(X, Y), 1.0, *tensors(w), network=network)
        assert J_only == pytest.approx(J_ref, rel=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_array_data_term_sums_equal_the_numpy_kernels(rng, dtype):
    network = Network((11, 9, 6, 4), "tanh", "softmax")
    thetas, X, Y = problem(rng, network, m=80, dtype=dtype)
    w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype)
    for weights in (None, w):
        term = ArrayDataTerm(DeviceArray(torch.from_numpy(X)), Y, network, weights)
        numpy_term = ShardedDataTerm(X, Y, network, weights, threads=1)
        assert term.m == pytest.approx(numpy_term.m, rel=TOLERANCE[dtype]) and term.dtype == dtype
        loss, grads = term(thetas)
        assert all(isinstance(g, np.ndarray) and g.dtype == np.float64 for g in grads)
        assert_close(loss, grads, *numpy_term(thetas), TOLERANCE[dtype])
        J, grad = full_objective(term, 0.5)(pack(thetas).astype(np.float64))
        J_np, grad_np = full_objective(numpy_term, 0.5)(pack(thetas).astype(np.float64))
        assert grad.dtype == np.float64
        assert_close(J, [grad], J_np, [grad_np], TOLERANCE[dtype])


def test_a_fit_through_the_array_data_term_reaches_the_numpy_weights(rng):
    network = Network((20, 8, 3))
    thetas, X, Y = problem(rng, network, m=200)
    x0 = pack(thetas)
    examples, _ = device_dataset(torch.from_numpy(X), np.arange(200) % 3, "float64")
    on_torch = minimize(full_objective(ArrayDataTerm(examples, Y, network), 1.0), x0, "lbfgs", 40, 1e-12)
    on_numpy = minimize(full_objective(ShardedDataTerm(X, Y, network, threads=1), 1.0), x0, "lbfgs", 40, 1e-12)
    assert on_torch.n_iter == on_numpy.n_iter == 40
    assert np.abs(on_torch.x - x0).max() > 0.1  # it did move
    np.testing.assert_allclose(on_torch.x, on_numpy.x, rtol=0, atol=1e-8)


def test_device_arrays_say_what_fit_needs_and_convert_on_their_device():
    X = DeviceArray(torch.arange(12, dtype=torch.int32).reshape(4, 3))
    assert X.shape == (4, 3) and X.ndim == 2 and len(X) == 4 and X.dtype == np.int32
    as32 = X.astype("float32")
    assert isinstance(as32.array, torch.Tensor) and as32.array.dtype == torch.float32 and as32.dtype == np.float32
    assert as32.astype(np.float32) is as32
    assert "torch" in repr(X) and "cpu" in repr(X)
    with pytest.raises(ParameterError, match="dtype must be float32 or float64 for torch arrays, got float16"):
        X.astype("float16")


def test_which_arrays_stay_on_their_device():
    assert is_device_array(torch.ones(2)) and is_device_array(DeviceArray(torch.ones(2, 2)))
    assert not is_device_array(np.ones(2)) and not is_device_array([1.0, 2.0])
    # a CPU tensor is on the host: train reads it with NumPy and the fast kernel
    assert not on_accelerator(torch.ones(2)) and not on_accelerator(np.ones(2))


def test_device_data_is_checked_in_one_line_each():
    y = np.arange(6) % 2
    good = torch.ones(6, 3)
    examples, labels = device_dataset(good, torch.from_numpy(y), "float32")
    assert examples.dtype == np.float32 and np.array_equal(labels, y)
    nan = good.clone()
    nan[2, 1] = float("nan")
    cases = [
        (lambda: device_dataset(torch.ones(6, 3, 2), y), DataError, "X must be a 2-D array of real numbers, got 3-D"),
        (lambda: device_dataset(torch.ones(6, 3, dtype=torch.complex64), y), DataError, "real numbers"),
        (lambda: device_dataset(nan, y), DataError, "X holds NaN or infinite values"),
        (lambda: device_dataset(good, y[:5]), DataError, "X has 6 examples but y has 5 labels"),
        (lambda: device_dataset(good, y, "float16"), ParameterError, "float32 or float64"),
        (lambda: device_dataset(good, y, optimizer="adam"), ParameterError, "use a full-batch one"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_mixed_or_unsupported_arrays_are_refused_in_one_line(rng, monkeypatch):
    network = Network((5, 4, 3))
    thetas, X, Y = problem(rng, network)
    with pytest.raises(TypeError, match=r"arrays of different libraries \(numpy, torch\)") as caught:
        reference.cost_and_gradient(thetas, torch.from_numpy(X), Y, network=network)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match=r"arrays of different libraries \(torch, [a-z]+\)"):
        ArrayDataTerm(torch.from_numpy(X), Y, network, sample_weight=FakeArray())
    with pytest.raises(DataError, match="X must be float32 or float64 here, got int64"):
        ArrayDataTerm(torch.ones(3, 5, dtype=torch.int64), Y[:3], network)
    with pytest.raises(TypeError, match="tests arrays are not covered by the array API"):
        namespace_of(FakeArray())
    monkeypatch.setitem(sys.modules, "array_api_compat", None)  # as if it were not installed
    with pytest.raises(TypeError, match="arrays of torch need array-api-compat: pip install array-api-compat"):
        namespace_of(torch.ones(2))
    assert namespace_of(np.ones(2), [1.0], None) is np  # NumPy needs none of it


class FakeArray:
    """An array-like of a library the array API does not know (this module's)."""

    shape = (50,)
    dtype = "float64"


def test_custom_kinds_have_no_array_api_form(rng, monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, "square", replace(ACTIVATIONS["tanh"], name="square", array_api=False))
    network = Network((5, 4, 3), "square")
    thetas, X, Y = problem(rng, network)
    with pytest.raises(TypeError, match="the activation 'square' has no array API form"):
        reference.cost_and_gradient(tensors(*thetas), *tensors(X, Y), network=network)
