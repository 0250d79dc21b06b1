"""Examples on any array backend: the data term through the Python array API.

``train(X, y)`` with X a PyTorch tensor (CPU or CUDA) or a CuPy array computes the cost
and its gradient with X's library on X's device, by the reference backpropagation
written with the array API (:mod:`nnlearn.core.arrayapi`); the optimisers still see
NumPy float64 vectors. Per evaluation the weights go to the device once, as one vector,
and the sums come back once, as one vector. NumPy input keeps the fast NumPy kernel
(:mod:`nnlearn.compute._threads`): this module is used only for other libraries' arrays.

``array-api-compat`` (``pip install array-api-compat``) is needed for them, and imported
only then.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Network, NetworkLike
from ..core.arrayapi import library_of, namespace_of, to_numpy
from ..core.backprop import data_sums
from ..datasets._check import check_dataset
from ..errors import DataError, ParameterError
from ..optim import MINI_BATCH

__all__ = ["ArrayDataTerm", "DeviceArray", "device_dataset", "is_device_array", "on_accelerator"]

#: Libraries whose arrays are computed where they are (array-api-compat covers them).
LIBRARIES = ("torch", "cupy", "jax", "jaxlib")
_FLOATS = ("float32", "float64")


def is_device_array(X: Any) -> bool:
    """True for a PyTorch, CuPy or JAX array (or a :class:`DeviceArray`): the examples stay on their device."""
    return isinstance(X, DeviceArray) or library_of(X) in LIBRARIES


def on_accelerator(X: Any) -> bool:
    """True for a device array that is not in the host's memory (a CUDA tensor, a CuPy array):
    what ``train`` computes where it is. A PyTorch CPU tensor is read by NumPy as it is and
    gets the fast NumPy kernel, several times faster on the CPU than the reference
    (docs/benchmarks.md, the backends side by side)."""
    if not is_device_array(X):
        return False
    array = X.array if isinstance(X, DeviceArray) else X
    return "cpu" not in str(getattr(array, "device", "")).lower()


def _namespace(*arrays: Any) -> Any:
    try:
        return namespace_of(*arrays)
    except TypeError as exc:
        raise DataError(f"training data: {exc}") from None


def _dtype_name(array: Any) -> str:
    """``"float32"``, ``"int64"``, ...: the dtype's name, whatever the library spells it."""
    return str(array.dtype).rpartition(".")[2]


class DeviceArray:
    """Examples kept as their library's array, with what :func:`nnlearn.training._train.fit` asks of
    them: ``shape``, ``ndim``, a NumPy ``dtype`` and ``astype``."""

    def __init__(self, array: Any):
        self.array = array
        self.xp = _namespace(array)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_dtype_name(self.array))

    def astype(self, dtype: Any) -> DeviceArray:
        """The examples in ``dtype`` (``"float32"`` or ``"float64"``), converted on their device."""
        name = np.dtype(dtype).name
        if name not in _FLOATS:
            raise ParameterError(f"dtype must be float32 or float64 for {library_of(self.array)} arrays, got {name}")
        if name == _dtype_name(self.array):
            return self
        return DeviceArray(self.xp.astype(self.array, getattr(self.xp, name)))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DeviceArray({library_of(self.array)}, shape={self.shape}, dtype={self.dtype}, on {self.array.device})"


def device_dataset(X: Any, y: Any, dtype: Any = "float64", optimizer: str = "lbfgs") -> tuple[DeviceArray, np.ndarray]:
    """Check examples on a device and their labels, as :func:`nnlearn.datasets.check_dataset` does
    NumPy data: ``(DeviceArray in dtype, labels as NumPy)``, or a one-line error.

    Raises
    ------
    DataError
        X not 2-D, not real numbers, with NaN or infinite values, or not as many rows as labels.
    ParameterError
        A mini-batch optimiser (its batches are drawn by NumPy on the host; use a
        full-batch one) or a dtype other than float32 and float64.
    """
    if optimizer in MINI_BATCH:
        raise ParameterError(
            f"the mini-batch optimiser {optimizer!r} draws its batches on the host; for examples on "
            f"{library_of(X)} arrays use a full-batch one (cg, lbfgs or fmincg)"
        )
    examples = X if isinstance(X, DeviceArray) else DeviceArray(X)
    kind = _dtype_name(examples.array)
    if examples.ndim != 2 or not (kind.startswith(("float", "int", "uint")) or kind == "bool"):
        raise DataError(f"training data: X must be a 2-D array of real numbers, got {examples.ndim}-D {kind}")
    examples = examples.astype(dtype)
    xp = examples.xp
    if not bool(xp.all(xp.isfinite(examples.array))):
        raise DataError("training data: X holds NaN or infinite values")
    labels = to_numpy(y) if is_device_array(y) else y
    _, labels = check_dataset(np.zeros((examples.shape[0], 1)), labels, "training data")
    return examples, labels


class ArrayDataTerm:
    """The data term (:class:`nnlearn.compute._dataterm.DataTerm`) of examples on any array API backend.

    Parameters
    ----------
    X : DeviceArray or array, shape (m, n)
        A PyTorch, CuPy, ... array, float32 or float64; computed with its library on its device.
    Y : array, shape (m, K)
        One-hot targets, NumPy or X's library; sent to X's device once.
    network : Network or sequence of int
    sample_weight : array, shape (m,), optional
        NumPy or X's library; sent once.
    blas : str
        Only ``"numpy"``: the device's library computes every product.

    Calling it with NumPy ``thetas`` sends them as one vector, runs the reference
    backpropagation there, and brings the sums back as one vector, in float64.
    """

    def __init__(self, X: Any, Y: Any, network: NetworkLike, sample_weight: Any = None, blas: str = "numpy"):
        if blas != "numpy":
            raise ParameterError(f"blas {blas!r} multiplies NumPy arrays on this machine, not examples on a device")
        array = X.array if isinstance(X, DeviceArray) else X
        self.xp = xp = _namespace(array)
        if _dtype_name(array) not in _FLOATS:
            raise DataError(f"training data: X must be float32 or float64 here, got {_dtype_name(array)}")
        self.X, self.device = array, array.device
        self.network = Network.of(network)
        self.dtype = np.dtype(_dtype_name(array))
        self.Y = self._on_device(Y)
        self.sample_weight = None if sample_weight is None else self._on_device(sample_weight)
        _namespace(self.X, self.Y, self.sample_weight)  # one library for all
        self.m = X.shape[0] if sample_weight is None else float(xp.sum(self.sample_weight))
        self.shapes = self.network.theta_shapes

    def _on_device(self, values: Any) -> Any:
        """``values`` (NumPy, or already X's library) as X's library's array, X's dtype, on X's device."""
        if isinstance(values, np.ndarray):
            values = np.ascontiguousarray(values, dtype=self.dtype)
        elif library_of(values) != library_of(self.X):
            raise DataError(
                f"training data: arrays of different libraries ({library_of(self.X)}, {library_of(values)}): "
                "give them all as one library's"
            )
        return self.xp.asarray(values, dtype=getattr(self.xp, self.dtype.name), device=self.device)

    def __call__(self, thetas: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        xp = self.xp
        vector = np.concatenate([np.ravel(theta) for theta in thetas]).astype(self.dtype, copy=False)
        weights = xp.asarray(vector, device=self.device)  # the one transfer there
        on_device, start = [], 0
        for rows, cols in self.shapes:
            on_device.append(xp.reshape(weights[start : start + rows * cols], (rows, cols)))
            start += rows * cols
        loss, grads = data_sums(on_device, self.X, self.Y, self.sample_weight, network=self.network)
        flat = xp.concat([xp.reshape(loss, (1,)), *(xp.reshape(grad, (-1,)) for grad in grads)])
        sums = to_numpy(flat).astype(np.float64)  # the one transfer back
        host, start = [], 1
        for rows, cols in self.shapes:
            host.append(sums[start : start + rows * cols].reshape(rows, cols))
            start += rows * cols
        return float(sums[0]), host
