"""The mini-batch update rules: SGD with momentum and Adam.

Each rule is a pair: ``init(x) -> state``, the state a run starts from, and
``step(x, grad, state, learning_rate, spare=None, **options) -> (x, state)``, one update from a
batch's gradient. :data:`STEPS` names them; :func:`nnlearn.optim._minibatch.minimize_minibatch`
runs them epoch by epoch. The state holds only arrays of x's shape and numbers, so a run's
snapshot can save it as it is.

A step leaves ``x`` and ``state`` as they were and returns new ones. Given ``spare`` (a dict
of arrays of x's shape by name, which the caller fills with arrays it no longer needs), it
writes the new arrays into those it finds there, and uses ``grad`` as scratch space: with a
network of 10^5 weights, allocating fresh ones each step (first touches of new pages) cost
more than the arithmetic. The operations are the textbook formulas' in the same order, so
the results are the same bits either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "MINI_BATCH",
    "LEARNING_RATES",
    "STEPS",
    "sgd_init",
    "sgd_step",
    "adam_init",
    "adam_step",
]

MINI_BATCH = ("sgd", "adam")
#: Default step sizes, measured on the embedded digits (docs/estimator.md): after 200
#: epochs Adam held out 91.1%, 91.8% and 93.1% at 0.001, 0.003 and 0.01; SGD (momentum
#: 0.9) 93.8%, 93.4% and 93.9% at 0.1, 0.3 and 1. scikit-learn's 0.001 suits its
#: ReLU/softmax networks, not these sigmoid ones.
LEARNING_RATES = {"sgd": 0.1, "adam": 0.01}


def sgd_init(x: np.ndarray) -> dict[str, Any]:
    """SGD state: a zero velocity, shape of ``x``."""
    return {"velocity": np.zeros_like(x)}


def _take(spare: dict[str, np.ndarray] | None, name: str, like: np.ndarray) -> np.ndarray:
    """An array for the new ``name``: a spare one when there is one, else a new one."""
    if spare:
        array = spare.pop(name, None)
        if array is not None and array.shape == like.shape and array.dtype == like.dtype:
            return array
    return np.empty_like(like)


def _scratch(grad: np.ndarray, spare: dict[str, np.ndarray] | None) -> np.ndarray:
    """``grad`` to write over: itself when the caller gave ``spare``, else a copy."""
    return grad if spare is not None else np.array(grad, dtype=np.float64)


def sgd_step(
    x: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    learning_rate: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    spare: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One SGD step with momentum mu and step size eta.

    v <- mu v - eta g; then x <- x + v (classical momentum), or x <- x + mu v - eta g
    (Nesterov's momentum in Sutskever et al.'s form, which looks ahead along v without
    a second gradient evaluation). mu = 0 is plain SGD.

    Returns
    -------
    x : ndarray, shape (p,)
    state : dict
    """
    grad = _scratch(grad, spare)
    velocity, new_x = _take(spare, "velocity", x), _take(spare, "x", x)
    np.multiply(state["velocity"], momentum, out=velocity)
    grad *= learning_rate
    velocity -= grad
    if nesterov:
        np.multiply(velocity, momentum, out=new_x)
        new_x -= grad
        new_x += x
    else:
        np.add(x, velocity, out=new_x)
    return new_x, {"velocity": velocity}


def adam_init(x: np.ndarray) -> dict[str, Any]:
    """Adam state: step count t = 0, zero first and second moments, shape of ``x``."""
    return {"t": 0, "m": np.zeros_like(x), "v": np.zeros_like(x)}


def adam_step(
    x: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    spare: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One Adam step (Kingma & Ba 2015, Algorithm 1).

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    x <- x - eta m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t).

    The bias corrections undo the moments' start at zero, which would otherwise make
    the first steps far too short.
    """
    t = state["t"] + 1
    grad = _scratch(grad, spare)
    m, v, new_x = _take(spare, "m", x), _take(spare, "v", x), _take(spare, "x", x)
    np.square(grad, out=v)
    v *= 1 - beta_2
    grad *= 1 - beta_1
    np.multiply(state["m"], beta_1, out=m)
    m += grad  # m = b1 m + (1 - b1) g
    np.multiply(state["v"], beta_2, out=grad)
    v += grad  # v = b2 v + (1 - b2) g^2
    step, root = grad, new_x
    np.divide(m, 1 - beta_1**t, out=step)  # m_hat
    step *= learning_rate
    np.divide(v, 1 - beta_2**t, out=root)  # v_hat
    np.sqrt(root, out=root)
    root += epsilon
    step /= root
    np.subtract(x, step, out=new_x)
    return new_x, {"t": t, "m": m, "v": v}


#: method -> (initial state, update), each a pure function.
STEPS: dict[str, tuple[Callable[[np.ndarray], dict[str, Any]], Callable[..., tuple[np.ndarray, dict[str, Any]]]]] = {
    "sgd": (sgd_init, sgd_step),
    "adam": (adam_init, adam_step),
}
