"""Which BLAS library multiplies the examples: NumPy's own, or Intel MKL.

Two products of every evaluation touch all the examples: the first layer's
``X @ Theta1'`` and its gradient ``delta2' @ X``. They are most of the work, and their
speed is the BLAS library's. NumPy's wheels bring OpenBLAS, which is faster than PyTorch's
library on an AMD EPYC and 1.4-1.6x slower on an Intel Xeon for these skinny shapes
(5000x401 by 401x25). The ``blas`` setting chooses, explicitly, and a model records the
choice (its history's ``blas``): ``"numpy"`` (the default: NumPy's library, whatever it
is) or ``"mkl"`` (Intel MKL through its CBLAS, from the ``mkl`` package:
``pip install "nnlearn[mkl]"``, about 1.1 GB installed). The other, small products stay
NumPy's.

The same choice always gives the same bits on the same machine and thread count: MKL
runs sequentially (nnlearn's shards are the threads) in its conditional numerical
reproducibility mode (``MKL_CBWR_AUTO`` with ``MKL_CBWR_STRICT``), which makes its results
independent of where the arrays lie in memory. A library other than the one a run started with changes the last bits, as
another BLAS would.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ParameterError

__all__ = ["BLAS_CHOICES", "products", "mkl_path"]

#: The ``blas`` setting's choices.
BLAS_CHOICES = ("numpy", "mkl")

Matmul = Callable[[np.ndarray, np.ndarray], np.ndarray]

# CBLAS's constants (cblas.h), and MKL's reproducibility modes (mkl_cbwr.h).
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_CBWR_AUTO, _CBWR_STRICT, _CBWR_SUCCESS = 2, 0x10000, 0
_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL (mkl_service.h)


def mkl_path() -> Path | None:
    """Where the ``mkl`` package's ``libmkl_rt`` is, or None without it."""
    try:
        files = importlib.metadata.distribution("mkl").files or ()
    except importlib.metadata.PackageNotFoundError:
        files = ()
    found = [Path(str(f.locate())) for f in files if f.name.startswith("libmkl_rt.so")]
    found += sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so*"))
    return next((path.resolve() for path in found if path.is_file()), None)


@functools.cache
def _mkl() -> ctypes.CDLL:
    path = mkl_path()
    if path is None:
        raise ParameterError('blas "mkl" needs Intel MKL, which is not installed: pip install "nnlearn[mkl]"')
    try:
        library = ctypes.CDLL(os.fspath(path))
    except OSError as exc:
        raise ParameterError(f'blas "mkl": cannot load {path} ({exc})') from None
    real = {"cblas_dgemm": ctypes.c_double, "cblas_sgemm": ctypes.c_float}
    for name, number in real.items():
        function = getattr(library, name)
        function.restype = None
        pointer, integer = ctypes.c_void_p, ctypes.c_int
        function.argtypes = [integer] * 6 + [number, pointer, integer, pointer, integer, number, pointer, integer]
    # Before any other call: MKL's sequential layer (nnlearn's shards are its threads, and
    # OpenMP's threads would spin beside them), then its reproducible mode.
    library.MKL_Set_Threading_Layer.argtypes, library.MKL_Set_Threading_Layer.restype = [ctypes.c_int], ctypes.c_int
    library.MKL_Set_Threading_Layer(_SEQUENTIAL)
    library.MKL_CBWR_Set.argtypes, library.MKL_CBWR_Set.restype = [ctypes.c_int], ctypes.c_int
    if library.MKL_CBWR_Set(_CBWR_AUTO | _CBWR_STRICT) != _CBWR_SUCCESS:
        raise ParameterError(f'blas "mkl": {path} refused its reproducible mode (MKL_CBWR_STRICT)')
    return library


def _layout(M: np.ndarray, transposed: bool) -> tuple[int, int]:
    """CBLAS's (transpose flag, leading dimension) for ``M`` (or ``M.T``) in a row-major call."""
    rows, cols = M.shape
    row_step, col_step = (stride // M.itemsize for stride in M.strides)
    if col_step == 1 or cols == 1:  # rows contiguous: row-major as it is
        return (_TRANS if transposed else _NO_TRANS), max(row_step, cols, 1)
    if row_step == 1 or rows == 1:  # columns contiguous: the transpose is row-major
        return (_NO_TRANS if transposed else _TRANS), max(col_step, rows, 1)
    raise ValueError("an operand with no contiguous dimension")


def _mkl_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by MKL's ?gemm, into a new C-ordered array, without copying either operand."""
    dtype = a.dtype
    gemm = {np.dtype(np.float64): _mkl().cblas_dgemm, np.dtype(np.float32): _mkl().cblas_sgemm}.get(dtype)
    if gemm is None or b.dtype != dtype:
        return a @ b
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=dtype)
    if out.size == 0 or k == 0:
        out[...] = 0
        return out
    try:
        trans_a, lda = _layout(a, False)
        trans_b, ldb = _layout(b, False)
    except ValueError:
        return a @ b
    gemm(_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, n)
    return out


def products(blas: str) -> Matmul | None:
    """The product of the kernel's two large products for the ``blas`` setting: None for
    NumPy's own (``@``), else a function ``matmul(a, b) -> a @ b``.

    Raises
    ------
    ParameterError
        For a library that is not installed, or not one of :data:`BLAS_CHOICES`.
    """
    if blas == "numpy":
        return None
    if blas == "mkl":
        _mkl()  # loaded, or one line saying how to install it
        return _mkl_matmul
    raise ParameterError(f"blas must be one of {', '.join(BLAS_CHOICES)}, got {blas!r}")
