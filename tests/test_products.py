"""The ``blas`` setting: Intel MKL for the two products with the examples, chosen explicitly,
recorded, and the same bits every time (the test extra installs ``nnlearn[mkl]``)."""

import numpy as np
import pytest

import nnlearn
import nnlearn.compute._products as products_module
from nnlearn.compute._products import mkl_path, products
from nnlearn.compute._threads import ShardedDataTerm
from nnlearn.core import Network, data_term, init_random, one_hot
from nnlearn.errors import ParameterError

pytestmark = pytest.mark.skipif(mkl_path() is None, reason='Intel MKL is not installed (pip install "nnlearn[mkl]")')


def layouts(rng, dtype):
    """The operands the kernel gives the product: C arrays, transposed views, F arrays."""
    X = rng.random((700, 41)).astype(dtype)
    theta = rng.random((9, 41)).astype(dtype)
    delta = rng.random((700, 9)).astype(dtype)
    yield X, theta.T  # the first layer, float32 (C order)
    yield theta, X.T  # the first layer, float64 (its transpose)
    yield delta.T, X  # the gradient
    yield np.asfortranarray(X), theta.T
    yield X[:, ::1][100:300], np.asfortranarray(theta).T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mkl_multiplies_every_layout_the_kernel_gives_it_as_numpy_does(dtype):
    matmul = products("mkl")
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in layouts(np.random.default_rng(0), dtype):
        product = matmul(a, b)
        assert product.dtype == dtype and product.flags.c_contiguous
        np.testing.assert_allclose(product, a @ b, rtol=tolerance)
        # other copies of the operands, in the same layout: where they lie in memory changes no bit
        assert np.array_equal(product, matmul(a.copy(order="K"), b.copy(order="K")))


def test_numpy_is_the_default_and_an_unknown_library_is_refused():
    assert products("numpy") is None
    with pytest.raises(ParameterError, match="blas must be one of numpy, mkl"):
        products("openblas")
    with pytest.raises(ParameterError, match="unknown blas 'openblas'; choose one of numpy, mkl"):
        nnlearn.train(*nnlearn.load_digits8(), max_iter=1, blas="openblas")


def test_a_missing_mkl_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setattr(products_module, "mkl_path", lambda: None)
    products_module._mkl.cache_clear()
    try:
        with pytest.raises(ParameterError, match=r'blas "mkl" needs Intel MKL.*pip install "nnlearn\[mkl\]"'):
            products("mkl")
    finally:
        products_module._mkl.cache_clear()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_data_term_with_mkl_is_the_same_bits_every_call_and_near_numpys(dtype):
    X, y = nnlearn.load_digits20()
    X = X.astype(dtype)
    _, Y = one_hot(y)
    Y = Y.astype(dtype)
    network = Network((400, 25, 10))
    thetas = init_random(network, rng=0, dtype=dtype)
    sums = [ShardedDataTerm(X, Y, network, threads=2, blas="mkl")(thetas) for _ in range(3)]
    for other in sums[1:]:
        assert other[0] == sums[0][0] and all(np.array_equal(g, h) for g, h in zip(other[1], sums[0][1]))
    # one shard alone sums the same rows with the same library: equal to the shards' sum to rounding
    alone = data_term(thetas, X, Y, network=network, matmul=products("mkl"))
    reference = data_term(thetas, X, Y, network=network)
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    for got in (sums[0], alone):
        assert got[0] == pytest.approx(reference[0], rel=tolerance)
        for g, h in zip(got[1], reference[1]):
            np.testing.assert_allclose(g, h, rtol=tolerance, atol=tolerance * np.abs(h).max())


@pytest.mark.slow
def test_training_with_mkl_is_recorded_and_repeats_bit_for_bit(tmp_path):
    X, y = nnlearn.load_digits20()
    first = nnlearn.train(X, y, optimizer="lbfgs", max_iter=20, blas="mkl")
    again = nnlearn.train(X, y, optimizer="lbfgs", max_iter=20, blas="mkl")
    numpy = nnlearn.train(X, y, optimizer="lbfgs", max_iter=20)
    assert first.history["blas"] == "mkl" and numpy.history["blas"] == "numpy"
    assert all(np.array_equal(a, b) for a, b in zip(first.thetas, again.thetas))
    assert not all(np.array_equal(a, b) for a, b in zip(first.thetas, numpy.thetas))  # another library's bits
    assert first.history["cost"][-1] == pytest.approx(numpy.history["cost"][-1], rel=1e-6)
    path = tmp_path / "m.npz"
    nnlearn.save_model(first, path)
    assert nnlearn.load_model(path).history["blas"] == "mkl"
    estimator = nnlearn.NeuralNetClassifier(max_iter=20, blas="mkl").fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(estimator.thetas_, first.thetas))
