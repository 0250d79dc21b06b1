"""Arrays of any library through the Python array API standard.

The reference backpropagation (:mod:`nnlearn.core.backprop`) and the objective
(:mod:`nnlearn.core.objective`) accept NumPy, PyTorch or CuPy arrays and compute with
their library on their device. NumPy arrays are computed with NumPy itself, as always;
any other library's namespace comes from ``array-api-compat``, imported only then (so
NumPy users need not install it).

The registry's kinds (:mod:`nnlearn.core.activations`) are written with NumPy and SciPy;
here are the built-in ones in array API functions only, which every namespace has.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

__all__ = ["namespace_of", "library_of", "to_numpy", "kinds_of", "Kinds"]


def namespace_of(*arrays: Any) -> Any:
    """The array namespace of ``arrays`` (None entries skipped): ``numpy`` itself when all
    are NumPy arrays, else the ``array-api-compat`` namespace of their library.

    Raises
    ------
    TypeError
        In one line, for arrays of different libraries, of a library the array API does
        not cover, or when ``array-api-compat`` is missing.
    """
    present = [a for a in arrays if a is not None]
    libraries = sorted({library_of(a) for a in present})
    if set(libraries) <= {"numpy", "builtins"}:  # lists and numbers are NumPy's to convert, as always
        return np
    try:
        from array_api_compat import array_namespace
    except ImportError:
        raise TypeError(
            f"arrays of {', '.join(libraries)} need array-api-compat: pip install array-api-compat"
        ) from None
    try:
        return array_namespace(*present)
    except TypeError:
        if len(libraries) > 1:
            raise TypeError(
                f"arrays of different libraries ({', '.join(libraries)}): give them all as one library's"
            ) from None
        raise TypeError(f"{libraries[0]} arrays are not covered by the array API (array-api-compat)") from None


def library_of(array: Any) -> str:
    """The top-level module of ``array``'s type: ``"numpy"``, ``"torch"``, ``"cupy"``, ..."""
    return type(array).__module__.split(".")[0]


def to_numpy(array: Any) -> np.ndarray:
    """A copy of ``array`` on the host as a NumPy array (one transfer from a device)."""
    if isinstance(array, np.ndarray):
        return array
    from array_api_compat import is_cupy_array, is_torch_array

    if is_torch_array(array):
        return array.detach().cpu().numpy()
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


class Kinds(NamedTuple):
    """One network's kinds as functions of arrays: g, g' (of a = g(z)), loss and delta of z_L."""

    function: Callable[[Any], Any]
    derivative: Callable[[Any], Any]
    loss: Callable[[Any, Any], Any]
    delta: Callable[[Any, Any], Any]


def _sigmoid(xp: ModuleType, z: Any) -> Any:
    # 0.5 tanh(z/2) + 0.5 is g(z) exactly in real numbers and never overflows.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _positive_part(xp: ModuleType, z: Any) -> Any:
    return xp.where(z > 0, z, xp.zeros_like(z))


def _softplus(xp: ModuleType, z: Any) -> Any:
    # max(z, 0) + log1p(exp(-|z|)): finite for any finite z, as the registry's logaddexp
    return _positive_part(xp, z) + xp.log1p(xp.exp(-xp.abs(z)))


def _log_sum_exp(xp: ModuleType, z: Any) -> Any:
    top = xp.max(z, axis=1, keepdims=True)
    return xp.log(xp.sum(xp.exp(z - top), axis=1)) + top[:, 0]


def _softmax(xp: ModuleType, z: Any) -> Any:
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _hidden(xp: ModuleType, name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if name == "sigmoid":
        return (lambda z: _sigmoid(xp, z)), (lambda a: a * (1 - a))
    if name == "tanh":
        return xp.tanh, (lambda a: 1 - a * a)
    if name == "relu":
        return (lambda z: _positive_part(xp, z)), (lambda a: xp.astype(a > 0, a.dtype))
    raise TypeError(f"the activation {name!r} has no array API form; give NumPy arrays for it")


def _output(xp: ModuleType, name: str) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    # delta = h(z) - y for both, as in the registry (activations.OUTPUTS)
    if name == "sigmoid":
        return (lambda z, Y: xp.sum(_softplus(xp, z) - Y * z, axis=1)), (lambda z, Y: _sigmoid(xp, z) - Y)
    if name == "softmax":
        return (lambda z, Y: _log_sum_exp(xp, z) - xp.sum(Y * z, axis=1)), (lambda z, Y: _softmax(xp, z) - Y)
    raise TypeError(f"the output {name!r} has no array API form; give NumPy arrays for it")


def kinds_of(xp: ModuleType, activation: str, output: str) -> Kinds:
    """A network's activation and output (by name) in the functions of namespace ``xp``."""
    return Kinds(*_hidden(xp, activation), *_output(xp, output))
