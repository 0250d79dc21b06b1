"""Arrays of any library through the Python array API standard.

The reference backpropagation (:mod:`nnlearn.core.backprop`) and the objective
(:mod:`nnlearn.core.objective`) accept NumPy, PyTorch or CuPy arrays and compute with
their library on their device. NumPy arrays are computed with NumPy itself, as always;
any other library's namespace comes from ``array-api-compat``, imported only then (so
NumPy users need not install it).

The kinds (:mod:`nnlearn.core.activations`) are written once with the functions of a
namespace ``xp``. The special functions they need and the array API lacks are here, as
functions of ``(xp, z)``: SciPy's for NumPy arrays (their numbers, exact where NumPy has
no such function), array API expressions for any other library's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["namespace_of", "library_of", "to_numpy", "expit", "softplus", "log_expit", "softmax", "logsumexp"]


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


def expit(xp: Any, z: Any) -> Any:
    """The logistic function 1 / (1 + e^-z), elementwise."""
    # Elsewhere 0.5 tanh(z/2) + 0.5: exactly g(z) in real numbers, and it never overflows.
    return special.expit(z) if xp is np else 0.5 * xp.tanh(0.5 * z) + 0.5


def softplus(xp: Any, z: Any) -> Any:
    """log(1 + e^z), elementwise, as logaddexp(0, z): finite for any finite z."""
    return xp.logaddexp(xp.zeros_like(z), z)


def log_expit(xp: Any, z: Any) -> Any:
    """log(1 / (1 + e^-z)) = -softplus(-z), elementwise, finite for any finite z."""
    return special.log_expit(z) if xp is np else -softplus(xp, -z)


def softmax(xp: Any, z: Any) -> Any:
    """Each row's softmax, shape (m, K)."""
    if xp is np:
        return special.softmax(z, axis=1)
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def logsumexp(xp: Any, z: Any) -> Any:
    """Each row's log sum exp, shape (m,)."""
    if xp is np:
        return special.logsumexp(z, axis=1)
    top = xp.max(z, axis=1, keepdims=True)
    return xp.log(xp.sum(xp.exp(z - top), axis=1)) + top[:, 0]
