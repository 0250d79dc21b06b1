"""Labels as the output layer sees them."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["one_hot"]


def one_hot(y: ArrayLike, classes: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One-hot encode labels.

    Parameters
    ----------
    y : array-like, shape (m,)
    classes : array-like, shape (K,), optional
        The label of each output unit; by default the sorted distinct labels of ``y``.

    Returns
    -------
    classes : ndarray, shape (K,)
    Y : ndarray, shape (m, K), float64
        Y[i, k] = 1 where y[i] == classes[k].

    Raises
    ------
    ValueError
        When a label is not among ``classes``.
    """
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    Y = (y[:, None] == classes[None, :]).astype(np.float64)
    unknown = Y.sum(axis=1) == 0
    if np.any(unknown):
        raise ValueError(f"labels not among the classes {classes.tolist()}: {np.unique(y[unknown]).tolist()}")
    return classes, Y
