"""The implementations being timed, each set up once and returned as a zero-argument call.

* ``nnlearn``: the objective :func:`nnlearn.train` hands its optimisers
  (:func:`nnlearn.compute._dataterm.full_objective` over a :class:`nnlearn.compute._threads.ShardedDataTerm`):
  a flat weight vector in, the examples shared among ``threads`` threads, the cost and a
  flat gradient out, the kernel running its fixed forms.
* ``array_numpy``, ``array_torch``: the same objective over the array API data term
  (:class:`nnlearn.compute._backends.ArrayDataTerm`: the reference backpropagation) on NumPy
  arrays and on PyTorch CPU tensors.
* ``core_blas``: :func:`nnlearn.core.cost_and_gradient` alone on all the examples, with
  OpenBLAS's own threads (the process's BLAS thread count): what sharding replaced.
* ``notebook``: the plain transcription of the notebook's function in
  ``tests/notebook_reference.py`` (imported, not copied), called as the notebook calls it:
  a flat weight vector in, the bias column re-added on every call.
* ``torch``: the same network and loss in PyTorch on the CPU, forward and backward,
  written at its best (see :func:`torch_network`).
* ``gemm``: the two large matrix products alone, X theta1' and delta2' X.
* ``gemm_best``: the same two products, each in its fastest form on this machine.
* ``nnlearn_mkl``: ``nnlearn`` with ``blas="mkl"``: the two products with the examples by
  Intel MKL's CBLAS (:mod:`nnlearn.compute._products`).
* ``products_numpy``, ``products_mkl``: the two products with the examples alone, in the
  forms the kernel gives them for X's dtype and sharded over the threads as nnlearn shards
  the examples, by NumPy's BLAS or by MKL: the two libraries compared on the same work.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from common import ROOT

LAM = 1.0


def notebook_function():
    """The notebook's cost function, from the tests' transcription of it."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.notebook_reference import nn_cost_function_backprop

    return nn_cost_function_backprop


def initial_thetas(layer_sizes, dtype, seed=0):
    """The notebook's initialisation: uniform in [-0.12, 0.12]."""
    from nnlearn.core import init_random

    return [t.astype(dtype) for t in init_random(layer_sizes, 0.12, rng=seed)]


def nnlearn_call(X, Y, thetas, threads, blas="numpy"):
    """The objective :func:`nnlearn.train` minimises, its examples in shards over ``threads`` threads."""
    from nnlearn.compute._dataterm import full_objective
    from nnlearn.compute._threads import ShardedDataTerm
    from nnlearn.core import Network, layer_sizes_of, pack

    network = Network(layer_sizes_of(thetas))
    objective = full_objective(ShardedDataTerm(X, Y, network, threads=threads, blas=blas), LAM)
    vector = pack(thetas)
    return lambda: objective(vector)


def nnlearn_mkl_call(X, Y, thetas, threads):
    """:func:`nnlearn_call` with ``blas="mkl"``."""
    return nnlearn_call(X, Y, thetas, threads, blas="mkl")


def array_call(X, Y, thetas, library):
    """The objective over :class:`nnlearn.compute._backends.ArrayDataTerm` with X as ``library``'s array."""
    from nnlearn.compute._backends import ArrayDataTerm
    from nnlearn.compute._dataterm import full_objective
    from nnlearn.core import layer_sizes_of, pack

    if library == "torch":
        import torch

        X = torch.from_numpy(X)
    objective = full_objective(ArrayDataTerm(X, Y, layer_sizes_of(thetas)), LAM)
    vector = pack(thetas)
    return lambda: objective(vector)


def array_numpy_call(X, Y, thetas, threads):
    return array_call(X, Y, thetas, "numpy")


def array_torch_call(X, Y, thetas, threads):
    return array_call(X, Y, thetas, "torch")


def core_blas_call(X, Y, thetas, threads):
    from nnlearn.core import cost_and_gradient

    return lambda: cost_and_gradient(thetas, X, Y, LAM)


def notebook_call(X, Y, thetas, threads):
    from nnlearn.core import layer_sizes_of, pack

    function, vector, sizes = notebook_function(), pack(thetas), layer_sizes_of(thetas)
    return lambda: function(vector, X, Y, LAM, sizes)


def gemm_call(X, Y, thetas, threads):
    """X @ theta1[:, 1:].T and delta2.T @ X: the products every implementation needs."""
    W1 = thetas[0][:, 1:]
    delta2 = np.random.default_rng(1).random((X.shape[0], W1.shape[0])).astype(X.dtype)

    def products():
        return X @ W1.T, delta2.T @ X

    return products


def _fastest(forms, repeats=5):
    """The name of the fastest of ``forms`` (name -> call), by the best of ``repeats`` interleaved calls."""
    best = dict.fromkeys(forms, float("inf"))
    for _ in range(repeats + 1):  # the first round only warms up
        for name, form in forms.items():
            start = time.perf_counter()
            form()
            best[name] = min(best[name], time.perf_counter() - start)
    return min(best, key=best.get)


def gemm_best_call(X, Y, thetas, threads):
    """The two large products, each in the form that ran fastest here: X theta1' or
    (theta1 X')', and delta2' X or (X' delta2)' with delta2 in C or Fortran order."""
    W1 = thetas[0][:, 1:]
    delta_c = np.random.default_rng(1).random((X.shape[0], W1.shape[0])).astype(X.dtype)
    delta_f = np.asfortranarray(delta_c)
    forward = {"X theta1'": lambda: X @ W1.T, "(theta1 X')'": lambda: (W1 @ X.T).T}
    gradient = {
        "delta2' X, C": lambda: delta_c.T @ X,
        "delta2' X, F": lambda: delta_f.T @ X,
        "(X' delta2)', C": lambda: (X.T @ delta_c).T,
        "(X' delta2)', F": lambda: (X.T @ delta_f).T,
    }
    repeats = 5 if X.shape[0] * X.shape[1] * W1.shape[0] < 1e9 else 1
    chosen = _fastest(forward, repeats), _fastest(gradient, repeats)

    def products():
        return forward[chosen[0]](), gradient[chosen[1]]()

    products.info = {"forms": ", ".join(chosen)}
    return products


def kernel_products_call(X, Y, thetas, threads, blas):
    """The kernel's two products with the examples alone, by ``blas``'s library.

    In the forms :func:`nnlearn.core.data_term` gives them for X's dtype: where the hidden
    layer is column-major (float64), ``theta1[:, 1:] @ X'`` and ``delta2' @ X`` with
    delta2 in Fortran order; else (float32) ``X @ theta1[:, 1:]'`` and ``delta2' @ X`` with
    delta2 in C order. The examples are cut into the shards
    :class:`nnlearn.compute._threads.ShardedDataTerm` makes for ``threads`` threads, run on
    its thread pool with every BLAS on one thread, as nnlearn runs them.
    """
    import itertools

    from nnlearn.compute._products import products
    from nnlearn.compute._threads import _pool, blas_threads, shard_bounds, shard_count
    from nnlearn.core import Network, layer_sizes_of
    from nnlearn.core.kernels import _COLUMN_MAJOR_HIDDEN

    matmul = products(blas) or np.matmul
    W1 = thetas[0][:, 1:]
    column_major = X.dtype in _COLUMN_MAJOR_HIDDEN
    order = "F" if column_major else "C"
    rng = np.random.default_rng(1)
    bounds = shard_bounds(X.shape[0], shard_count(X.shape[0], Network(layer_sizes_of(thetas)), threads))
    shards = [
        (X[i:j], np.asarray(rng.random((j - i, W1.shape[0])), dtype=X.dtype, order=order))
        for i, j in itertools.pairwise(bounds)
    ]

    def shard_products(Xs, delta):
        forward = matmul(W1, Xs.T) if column_major else matmul(Xs, W1.T)
        return forward, matmul(delta.T, Xs)

    def call():
        with blas_threads(1):
            if len(shards) == 1:
                return shard_products(*shards[0])
            pool = _pool(len(shards))
            return [f.result() for f in [pool.submit(shard_products, *shard) for shard in shards]]

    forms = "theta1 X', delta2' X (delta2 F)" if column_major else "X theta1', delta2' X (delta2 C)"
    call.info = {"forms": forms, "shards": len(shards)}
    if blas != "numpy":  # the library's own peak, on one thread (MKL runs sequentially here)
        call.info["peak_gflops_1_thread"] = gemm_peak_gflops(X.dtype, matmul=matmul)
    return call


def products_numpy_call(X, Y, thetas, threads):
    return kernel_products_call(X, Y, thetas, threads, "numpy")


def products_mkl_call(X, Y, thetas, threads):
    return kernel_products_call(X, Y, thetas, threads, "mkl")


def torch_network(X, Y, thetas, torch, device="cpu"):
    """Forward and backward of the 1-hidden-layer network and the course's loss in PyTorch.

    At its best: the bias column is added to X once, outside the timed call; the hidden
    layer's bias is added by ``addmm`` rather than by concatenating a column; the loss is
    ``binary_cross_entropy_with_logits`` (stable, fused) summed over classes and
    averaged over examples, plus lam/(2m) times the non-bias weights squared.
    """
    X1 = torch.cat([torch.ones(X.shape[0], 1, dtype=X.dtype, device=device), X], dim=1)
    W1, W2 = (torch.tensor(t, requires_grad=True, device=device) for t in thetas)
    m = X.shape[0]
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def call():
        W1.grad = W2.grad = None
        a2 = torch.sigmoid(X1 @ W1.T)
        z3 = torch.addmm(W2[:, 0], a2, W2[:, 1:].T)
        penalty = W1[:, 1:].square().sum() + W2[:, 1:].square().sum()
        loss = bce(z3, Y, reduction="sum") / m + LAM / (2 * m) * penalty
        loss.backward()
        return loss.item(), W1.grad, W2.grad

    return call, (W1, W2)


def torch_call(X, Y, thetas, threads):
    import torch

    call, _ = torch_network(torch.from_numpy(X), torch.from_numpy(Y), thetas, torch)
    return call


CALLS = {
    "nnlearn": nnlearn_call,
    "array_numpy": array_numpy_call,
    "array_torch": array_torch_call,
    "core_blas": core_blas_call,
    "notebook": notebook_call,
    "torch": torch_call,
    "gemm": gemm_call,
    "gemm_best": gemm_best_call,
    "nnlearn_mkl": nnlearn_mkl_call,
    "products_numpy": products_numpy_call,
    "products_mkl": products_mkl_call,
}


def gemm_peak_gflops(dtype, size=2000, repeats=5, matmul=np.matmul):
    """Best rate of an n x n matrix product, the machine's matrix-multiply peak (by
    ``matmul``: NumPy's BLAS unless another is given)."""
    rng = np.random.default_rng(0)
    A, B = rng.random((size, size)).astype(dtype), rng.random((size, size)).astype(dtype)
    matmul(A, B)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(A, B)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
