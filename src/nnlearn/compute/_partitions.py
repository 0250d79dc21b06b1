"""A worker's share of a cluster run: its partitions, kept where the kernel wants them.

:class:`Partitions` lives on a Dask worker as an actor (Dask calls it from the client
directly, without the scheduler in the path: 2 ms a call here against 12 ms for a task).
It holds the partitions the client gave it, each copied once, when it arrives, into
memory aligned to 64 bytes and C order in the run's dtype: Dask hands over arrays at
whatever offset they had in the message (51 bytes past a 64-byte boundary here), and the
products on such rows took 2.3x as long. Every evaluation then sends only the weights.

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's
thresholds: every large temporary of an evaluation is then mapped afresh and faulted in
page by page, and a 50,000-row evaluation took 1.12x a local one. While it holds
partitions, :class:`Partitions` raises the thresholds (``mallopt``) so that the
temporaries are reused from the heap, as in an ordinary process, and puts Dask's back
when it is let go. Measured on the project's machine: 76 ms on the worker against 77 ms
in one local process (docs/cluster.md).

This module runs on the workers: it imports nothing of nnlearn but the math core and
how threads are limited.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import os
from typing import Any

import numpy as np

from ..core import Network, data_term, unpack
from ..errors import DataError
from ._products import products
from ._threads import blas_threads

__all__ = ["Partitions", "aligned", "hand_over"]

#: Bytes each partition's arrays are aligned to (a cache line, and AVX-512's vector).
ALIGNMENT = 64
# Copies from this size on are mapped pages of their own (:func:`aligned`).
_OWN_PAGES = 1 << 20

# glibc's mallopt parameters (malloc.h), and the values held while partitions are.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HELD = {_M_TRIM_THRESHOLD: 64 << 20, _M_MMAP_THRESHOLD: 32 << 20}  # 32 MiB: glibc's largest
# What Dask's nanny sets them to (its environment variable), and glibc's own mmap threshold.
_DEFAULT_MMAP = 128 << 10


def aligned(array: Any, dtype: np.dtype) -> np.ndarray:
    """A C-ordered copy of ``array`` in ``dtype`` whose data start on an ``ALIGNMENT``-byte boundary.

    Large copies get pages of their own from the system (``mmap``: page-aligned). NumPy's
    own large arrays ask the kernel for huge pages, and on this project's machine the
    first touch of such memory took 4.5x as long (0.34 s against 0.075 s for 160 MB: the
    kernel compacts memory to find them), a cost paid once per partition, on the workers.
    """
    array = np.asarray(array)
    dtype = np.dtype(dtype)
    nbytes = array.size * dtype.itemsize
    if nbytes >= _OWN_PAGES:
        out = np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(array.shape)
    else:
        buffer = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
        offset = -buffer.ctypes.data % ALIGNMENT
        out = buffer[offset : offset + nbytes].view(dtype).reshape(array.shape)
    out[...] = array
    return out


def _libc_mallopt():
    """glibc's ``mallopt``, or None where there is none (another C library, another system)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return function


def _set_thresholds(values: dict[int, int]) -> None:
    mallopt = _libc_mallopt()
    if mallopt is not None:
        for parameter, value in values.items():
            mallopt(parameter, value)


def _dask_thresholds() -> dict[int, int] | None:
    """The thresholds to put back when partitions are let go: Dask's, where its nanny set one."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if trim is None or not trim.isdigit():
        return None
    return {_M_TRIM_THRESHOLD: int(trim), _M_MMAP_THRESHOLD: _DEFAULT_MMAP}


def _check_finite(X: np.ndarray, first_row: int) -> None:
    """A DataError naming the first row (of the training data) with NaN or infinite values."""
    if not np.all(np.isfinite(X)):
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        rows = f"row {first_row + bad[0]}" + (f" (and {bad.size - 1} more)" if bad.size > 1 else "")
        raise DataError(f"the training data hold NaN or infinite values in {rows}")


class Partitions:
    """Partitions of a run's examples on one worker (a Dask actor).

    Parameters
    ----------
    network : Network
    dtype : numpy.dtype
        The run's precision: the partitions are kept in it.
    blas : str
        The library of the products with the examples (:mod:`nnlearn.compute._products`),
        loaded here, on the worker.
    """

    def __init__(self, network: Network, dtype: Any, blas: str = "numpy"):
        self.network = Network.of(network)
        self.dtype = np.dtype(dtype)
        self.matmul = products(blas)
        self.parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self._first_rows: dict[int, int] = {}
        self._restore = _dask_thresholds()
        if self._restore is not None:
            _set_thresholds(_HELD)

    def hold(self, index: int, first_row: int, X: Any, Y: Any, sample_weight: Any = None) -> int:
        """Keep partition ``index`` (rows ``first_row`` on of the training data); its row count.

        Raises
        ------
        DataError
            When its examples hold NaN or infinite values, naming the rows.
        """
        X = aligned(X, self.dtype)
        _check_finite(X, first_row)
        weights = None if sample_weight is None else aligned(sample_weight, self.dtype)
        self.parts[index] = (X, aligned(Y, self.dtype), weights)
        return int(X.shape[0])

    def reserve(self, index: int, first_row: int, shape: tuple[int, int], Y: Any, sample_weight: Any = None) -> None:
        """Make room for partition ``index``, whose examples come in pieces (:meth:`fill`)."""
        nbytes = shape[0] * shape[1] * self.dtype.itemsize
        X = np.frombuffer(mmap.mmap(-1, nbytes), dtype=self.dtype) if nbytes else np.empty(0, self.dtype)
        weights = None if sample_weight is None else aligned(sample_weight, self.dtype)
        self.parts[index] = (X.reshape(shape), aligned(Y, self.dtype), weights)
        self._first_rows[index] = first_row

    def fill(self, index: int, start: int, rows: Any) -> None:
        """Copy a piece of partition ``index``'s examples, from its row ``start`` on.

        A piece at a time, the message each arrives in is small and its memory is reused
        for the next (a whole partition's message is as large as the partition, and new
        pages cost their first touch: docs/cluster.md).
        """
        rows = np.asarray(rows)
        _check_finite(rows, self._first_rows[index] + start)
        self.parts[index][0][start : start + rows.shape[0]] = rows

    def sums(self, x: np.ndarray) -> dict[int, tuple[Any, list[np.ndarray]]]:
        """Every partition's unnormalised sums at the flat weights ``x``, on one BLAS thread
        (as the local shards: :func:`nnlearn.core.data_term`)."""
        thetas = unpack(np.asarray(x, dtype=self.dtype), self.network)
        with blas_threads(1):
            return {
                index: data_term(thetas, X, Y, weights, network=self.network, matmul=self.matmul)
                for index, (X, Y, weights) in sorted(self.parts.items())
            }

    def release(self) -> None:
        """Let the partitions go, and put Dask's memory thresholds back."""
        self.parts = {}
        if self._restore is not None:
            _set_thresholds(self._restore)
            self._restore = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()


def hand_over(actor: Any, index: int, first_row: int, X: Any, Y: Any, sample_weight: Any = None) -> int:
    """A task: give a partition that is on this worker (sent here, or a Dask array's chunk
    read here) to the actor here, without another copy through a connection."""
    from distributed import get_worker

    instance: Any = get_worker().state.actors.get(actor.key)
    if instance is None:  # not on this worker after all: through Dask
        return actor.hold(index, first_row, X, Y, sample_weight).result()
    return instance.hold(index, first_row, X, Y, sample_weight)
