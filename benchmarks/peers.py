"""The implementations being timed, each set up once and returned as a zero-argument call.

* ``nnlearn``: the objective :func:`nnlearn.train` hands its optimisers
  (:func:`nnlearn.training.make_objective`): a flat weight vector in, the examples shared
  among ``threads`` threads (:mod:`nnlearn.threads`), the cost and a flat gradient out.
* ``core_blas``: :func:`nnlearn.core.cost_and_gradient` alone on all the examples, with
  OpenBLAS's own threads (the process's BLAS thread count): what sharding replaced.
* ``notebook``: the plain transcription of the notebook's function in
  ``tests/notebook_reference.py`` (imported, not copied), called as the notebook calls it:
  a flat weight vector in, the bias column re-added on every call.
* ``torch``: the same network and loss in PyTorch on the CPU, forward and backward,
  written at its best (see :func:`torch_network`).
* ``gemm``: the two large matrix products alone, X theta1' and delta2' X.
"""

from __future__ import annotations

import sys

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


def nnlearn_call(X, Y, thetas, threads):
    from nnlearn.core import layer_sizes_of, pack
    from nnlearn.training import make_objective

    objective = make_objective(X, Y, LAM, layer_sizes_of(thetas), threads=threads)
    vector = pack(thetas)
    return lambda: objective(vector)


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


def torch_network(X, Y, thetas, torch):
    """Forward and backward of the 1-hidden-layer network and the course's loss in PyTorch.

    At its best: the bias column is added to X once, outside the timed call; the hidden
    layer's bias is added by ``addmm`` rather than by concatenating a column; the loss is
    ``binary_cross_entropy_with_logits`` (stable, fused) summed over classes and
    averaged over examples, plus lam/(2m) times the non-bias weights squared.
    """
    X1 = torch.cat([torch.ones(X.shape[0], 1, dtype=X.dtype), X], dim=1)
    W1, W2 = (torch.tensor(t, requires_grad=True) for t in thetas)
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
    "core_blas": core_blas_call,
    "notebook": notebook_call,
    "torch": torch_call,
    "gemm": gemm_call,
}


def gemm_peak_gflops(dtype, size=2000, repeats=5):
    """Best rate of an n x n matrix product, the machine's matrix-multiply peak."""
    rng = np.random.default_rng(0)
    A, B = rng.random((size, size)).astype(dtype), rng.random((size, size)).astype(dtype)
    A @ B
    best = float("inf")
    for _ in range(repeats):
        import time

        start = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
