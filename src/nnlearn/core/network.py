"""A network's description, and its weights' shapes, packing and initial values.

Conventions are the course notebook's, generalised to any number of layers:

* ``layer_sizes`` = (s_1, ..., s_L): input units, hidden units per layer, output units K.
* ``thetas`` is a list of L - 1 weight matrices; ``theta`` for layer l has shape
  (s_{l+1}, s_l + 1) and holds the bias weights in column 0.

Every function that needs a network's shape takes a :class:`Network` or, as before,
a plain sequence of layer sizes (which means the course's sigmoid network).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import ACTIVATIONS, OUTPUTS

__all__ = [
    "Network",
    "NetworkLike",
    "theta_shapes",
    "layer_sizes_of",
    "init_random",
    "init_debug",
    "debug_matrix",
    "pack",
    "unpack",
]


@dataclass(frozen=True)
class Network:
    """What a feedforward network is, apart from its weights.

    Parameters
    ----------
    layer_sizes : sequence of int
        (s_1, ..., s_L): inputs, hidden units per layer, outputs; at least two layers.
    activation : str
        The hidden units' activation: any key of :data:`nnlearn.core.ACTIVATIONS`
        (default ``"sigmoid"``, the course's).
    output : str
        The output layer and its loss: any key of :data:`nnlearn.core.OUTPUTS` (default
        ``"sigmoid"``, the course's independent units).

    Raises
    ------
    ValueError
        For sizes that are not positive integers, or an unknown activation or output.
    """

    layer_sizes: tuple[int, ...]
    activation: str = "sigmoid"
    output: str = "sigmoid"

    def __post_init__(self) -> None:
        sizes = tuple(self.layer_sizes)
        whole = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes)
        if len(sizes) < 2 or not whole:
            raise ValueError(f"layer sizes must be two or more positive integers, got {list(sizes)}")
        object.__setattr__(self, "layer_sizes", tuple(int(s) for s in sizes))
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not isinstance(self.output, str) or self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; choose one of {', '.join(OUTPUTS)}")

    @classmethod
    def of(cls, network: NetworkLike) -> Network:
        """``network`` itself, or the course's sigmoid network of these layer sizes."""
        return network if isinstance(network, Network) else cls(tuple(network))

    @property
    def theta_shapes(self) -> list[tuple[int, int]]:
        """Shapes (s_{l+1}, s_l + 1) of the weight matrices, a list of L - 1 tuples."""
        sizes = self.layer_sizes
        return [(s_out, s_in + 1) for s_in, s_out in zip(sizes[:-1], sizes[1:])]

    @property
    def n_weights(self) -> int:
        """p, the number of weights, biases included."""
        return sum(rows * cols for rows, cols in self.theta_shapes)

    @property
    def is_course(self) -> bool:
        """True for the course's kind: sigmoid hidden units and sigmoid outputs."""
        return self.activation == "sigmoid" and self.output == "sigmoid"

    def describe(self) -> str:
        """``"400-25-10, sigmoid/sigmoid"``: sizes, then activation/output."""
        return f"{'-'.join(map(str, self.layer_sizes))}, {self.activation}/{self.output}"


#: A :class:`Network`, or layer sizes standing for the course's sigmoid network.
NetworkLike = Network | Sequence[int]


def theta_shapes(network: NetworkLike) -> list[tuple[int, int]]:
    """Shapes (s_{l+1}, s_l + 1) of a network's weight matrices, a list of L - 1 tuples."""
    return Network.of(network).theta_shapes


def layer_sizes_of(thetas: Sequence[np.ndarray]) -> tuple[int, ...]:
    """Layer sizes (s_1, ..., s_L) read off a list of weight matrices."""
    return (thetas[0].shape[1] - 1,) + tuple(theta.shape[0] for theta in thetas)


def _half_width(network, epsilon, s_in, s_out, hidden):
    if epsilon != "auto":
        return epsilon
    kind = ACTIVATIONS[network.activation] if hidden else OUTPUTS[network.output]
    return kind.half_width(s_in, s_out)


def init_random(
    network: NetworkLike,
    epsilon: float | str = 0.12,
    rng: int | np.random.Generator | None = None,
    dtype: DTypeLike = np.float64,
) -> list[np.ndarray]:
    """Random weights, uniform in [-epsilon, epsilon], to break the symmetry.

    Parameters
    ----------
    network : Network or sequence of int
    epsilon : float or "auto"
        Half-width of the interval; the course's is 0.12. ``"auto"`` takes each layer's
        from its kind's registry entry (``init``: the hidden layers' from the
        activation's, the last from the output's): the course's suggestion
        sqrt(6) / sqrt(s_l + s_{l+1}) (``"glorot"``), or He's sqrt(6 / s_l), whose
        variance 2 / s_l suits rectifiers (``"he"``).
    rng : None, int or numpy.random.Generator
        Seed or generator (``numpy.random.default_rng`` semantics).

    Returns
    -------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    """
    network = Network.of(network)
    rng = np.random.default_rng(rng)
    shapes = network.theta_shapes
    thetas = []
    for l, (s_out, s_in_plus_1) in enumerate(shapes):
        eps = _half_width(network, epsilon, s_in_plus_1 - 1, s_out, hidden=l < len(shapes) - 1)
        theta = rng.uniform(-eps, eps, size=(s_out, s_in_plus_1))
        thetas.append(theta.astype(dtype, copy=False))
    return thetas


def debug_matrix(shape: tuple[int, ...]) -> np.ndarray:
    """The course's deterministic test matrix: sin(1..count) / 10, filled column-major.

    This is Octave's ``reshape(sin(1:numel(W)), size(W)) / 10``.
    """
    count = int(np.prod(shape))
    return np.sin(np.arange(1, count + 1)).reshape(shape, order="F") / 10


def init_debug(network: NetworkLike) -> list[np.ndarray]:
    """Deterministic weights for gradient checking, one :func:`debug_matrix` per layer."""
    return [debug_matrix(shape) for shape in theta_shapes(network)]


def pack(thetas: Iterable[np.ndarray], order: Literal["C", "F"] = "C") -> np.ndarray:
    """Unroll weight matrices into one vector of shape (p,), p = sum of their sizes.

    ``order="C"`` is the notebook's ``np.r_[theta1.ravel(), theta2.ravel()]``;
    ``order="F"`` is Octave's ``[Theta1(:); Theta2(:)]``.
    """
    return np.concatenate([np.ravel(theta, order=order) for theta in thetas])


def unpack(vector: ArrayLike, network: NetworkLike, order: Literal["C", "F"] = "C") -> list[np.ndarray]:
    """Inverse of :func:`pack`: a vector of shape (p,) back to the weight matrices.

    Returns views into ``vector`` (copies for ``order="F"``), shapes :func:`theta_shapes`.
    """
    vector = np.asarray(vector)
    network = Network.of(network)
    if vector.shape != (network.n_weights,):
        raise ValueError(
            f"vector has shape {vector.shape} but layer sizes {network.layer_sizes} need {network.n_weights} weights"
        )
    thetas, start = [], 0
    for shape in network.theta_shapes:
        stop = start + shape[0] * shape[1]
        thetas.append(vector[start:stop].reshape(shape, order=order))
        start = stop
    return thetas
