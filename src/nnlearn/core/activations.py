"""The kinds of hidden units and of output layers: one registry entry each, carrying all of it.

A hidden activation is an :class:`Activation` in :data:`ACTIVATIONS`, an output layer and
its loss an :class:`Output` in :data:`OUTPUTS`. A new kind is one entry
(:func:`register_activation`, :func:`register_output`) and nothing else: the reference
and the fast kernel, initial weights, model files, the command line, the estimator and
the web page all read what they need from it. An entry carries

* ``name``, the key it is registered under;
* its mathematics written once with the array API, each form taking the namespace ``xp``
  first (``numpy`` itself for NumPy arrays, array-api-compat's for PyTorch or CuPy:
  :mod:`nnlearn.core.arrayapi`); the methods without the ``xp_`` prefix are its NumPy
  forms. Special functions (expit, softmax, ...) come from :mod:`nnlearn.core.arrayapi`,
  which keeps SciPy's exact ones for NumPy arrays;
* ``kernel``, optionally, the fast kernel's in-place forms; :mod:`nnlearn.core.kernels`
  runs an entry without them through its NumPy forms, as the reference does;
* ``init``, its layers' initial scale for ``epsilon_init="auto"`` (:data:`INITS`);
* for an activation, ``display``, the range the web page shows its values on.

An activation's derivative is written from its output a = g(z), which backpropagation
has at hand: GELU or SiLU, whose derivative needs z, are out of scope for this design.
The layout follows scikit-learn's ``neural_network/_base.py`` (``ACTIVATIONS``,
``DERIVATIVES``), with a kind's pieces kept side by side in one entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .arrayapi import expit, log_expit, logsumexp, softmax, softplus

__all__ = [
    "Activation",
    "Output",
    "HiddenKernel",
    "OutputKernel",
    "ACTIVATIONS",
    "OUTPUTS",
    "INITS",
    "register_activation",
    "register_output",
    "sigmoid",
    "sigmoid_gradient",
    "in_order_of",
]

# A name travels to the command line, model files, JSON and HTML: keep it plain.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")


def sigmoid(z: ArrayLike) -> np.ndarray:
    """Logistic function g(z) = 1 / (1 + exp(-z)), elementwise, any shape; overflow-free
    (``scipy.special.expit``)."""
    return special.expit(z)


def sigmoid_gradient(z: ArrayLike) -> np.ndarray:
    """Derivative of the sigmoid, elementwise, any shape: g'(z) = g(z) (1 - g(z)); 0.25 at z = 0."""
    a = special.expit(z)
    return a * (1 - a)


# ------------------------------------------------------------ initial weights

#: Half-widths of the uniform initial weights by name, functions of (fan_in, fan_out):
#: Glorot's sqrt(6) / sqrt(fan_in + fan_out), the course's suggestion, and He's
#: sqrt(6 / fan_in), whose variance 2 / fan_in suits rectifiers.
INITS: dict[str, Callable[[int, int], float]] = {
    "glorot": lambda fan_in, fan_out: np.sqrt(6.0) / np.sqrt(fan_in + fan_out),
    "he": lambda fan_in, fan_out: np.sqrt(6.0 / fan_in),
}

Init = str | Callable[[int, int], float]
#: A form of the array API: a function of the namespace ``xp`` and arrays.
Form = Callable[..., Any]


# ------------------------------------------------------------ the entries


class HiddenKernel(NamedTuple):
    """The fast kernel's in-place forms of a hidden activation: ``activate(z)`` writes g(z)
    over z; ``backward(p, a)`` writes delta_l = p .* g'(z_l) over p = delta_{l+1}
    theta_l[:, 1:], and may overwrite a = a_l. With ``negated`` it gets -p (the kernel
    negates the small theta, not the (m, s) product): a (a - 1) needs no temporary."""

    activate: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    negated: bool = False


class OutputKernel(NamedTuple):
    """The fast kernel's forms of an output layer, each free to overwrite the logits z:
    ``loss_and_delta(z, Y, w)`` gives sum_i w_i loss_i (w None: all 1) and the unweighted
    delta; ``loss_sum`` that sum alone, ``function(z)`` h(z) (None: the entry's forms)."""

    loss_and_delta: Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple[Any, np.ndarray]]
    loss_sum: Callable[[np.ndarray, np.ndarray, np.ndarray | None], Any] | None = None
    function: Callable[[np.ndarray], np.ndarray] | None = None


class _Kind:
    """What both kinds of entry share: a checked name, their initial scale, array API or not."""

    name: str
    init: Init
    array_api: bool

    def _check(self, what: str) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"{what} name {self.name!r}: a letter, then letters, digits, _ . or - (64 at most)")
        if not (callable(self.init) or self.init in INITS):
            raise ValueError(f"{what} {self.name!r}: init must be one of {', '.join(INITS)} or a function")

    def _check_onnx(self, what: str) -> None:
        onnx = getattr(self, "onnx", None)
        if onnx is None:
            return
        if isinstance(onnx, str) or not all(isinstance(op, str) and op.isidentifier() for op in onnx) or not onnx:
            raise ValueError(f"{what} {self.name!r}: onnx must be None or a tuple of ONNX operator names")
        object.__setattr__(self, "onnx", tuple(onnx))

    def half_width(self, fan_in: int, fan_out: int) -> float:
        """The half-width of its layers' uniform initial weights for ``epsilon_init="auto"``."""
        return (INITS[self.init] if isinstance(self.init, str) else self.init)(fan_in, fan_out)


@dataclass(frozen=True)
class Activation(_Kind):
    """A hidden layer's activation: g, and g' written from the layer's output a = g(z).

    * ``xp_function(xp, z) -> a`` and ``xp_derivative(xp, a) -> g'(z)``, elementwise,
      any shape; the derivative from a = g(z), never z;
    * ``init``: a name in :data:`INITS`, or a function (fan_in, fan_out) -> half-width;
    * ``display``: the range (low, high) shown dark to bright; None: from 0 to the
      layer's most active unit;
    * ``kernel``: the fast kernel's :class:`HiddenKernel` (None: it uses the NumPy forms);
    * ``array_api``: False for forms that work on NumPy arrays only (SciPy's functions,
      say): the reference then refuses other libraries' arrays with a TypeError;
    * ``onnx``: g as ONNX operators, a tuple of names of elementwise operators with one
      input and no attributes, applied in turn (``("Sigmoid",)``); None: a model of this
      kind cannot be exported (:mod:`nnlearn.model._onnx` says so, naming it).
    """

    name: str
    xp_function: Form
    xp_derivative: Form
    init: Init = "glorot"
    display: tuple[float, float] | None = None
    kernel: HiddenKernel | None = None
    array_api: bool = True
    onnx: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._check("activation")
        self._check_onnx("activation")
        if self.display is not None:
            low, high = (float(v) for v in self.display)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"activation {self.name!r}: display must be None or (low, high), low < high")
            object.__setattr__(self, "display", (low, high))

    def function(self, z: np.ndarray) -> np.ndarray:
        """g(z) of a NumPy array."""
        return self.xp_function(np, z)

    def derivative(self, a: np.ndarray) -> np.ndarray:
        """g'(z) of a NumPy array, from a = g(z)."""
        return self.xp_derivative(np, a)


@dataclass(frozen=True)
class Output(_Kind):
    """An output layer and its loss, all functions of the logits z_L, shape (m, K).

    * ``xp_function(xp, z) -> h``: the output activations h_theta(x), shape (m, K);
    * ``xp_loss(xp, z, Y) -> l``: each example's loss, shape (m,), finite for any finite z;
    * ``xp_delta(xp, z, Y) -> dl/dz``, shape (m, K): the output layer's delta;
    * ``xp_proba(xp, z) -> P``: class probabilities, rows summing to 1, never
      decreasing as a logit grows (:meth:`proba` mends the ties rounding leaves);
    * ``init``, ``kernel`` (an :class:`OutputKernel`), ``array_api``: as :class:`Activation`'s;
    * ``onnx``: the class probabilities (``xp_proba``) from the logits as ONNX operators, as
      :class:`Activation`'s ``onnx`` (the last may be ``"Softmax"``, over the classes).
    """

    name: str
    xp_function: Form
    xp_loss: Form
    xp_delta: Form
    xp_proba: Form
    init: Init = "glorot"
    kernel: OutputKernel | None = None
    array_api: bool = True
    onnx: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self._check("output")
        self._check_onnx("output")

    def function(self, z: np.ndarray) -> np.ndarray:
        """h(z) of NumPy logits."""
        return self.xp_function(np, z)

    def loss(self, z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Each example's loss, NumPy."""
        return self.xp_loss(np, z, Y)

    def delta(self, z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """dloss/dz, NumPy."""
        return self.xp_delta(np, z, Y)

    def proba(self, z: np.ndarray) -> np.ndarray:
        """Class probabilities from NumPy logits, in the logits' order (:func:`in_order_of`):
        ``argmax`` of a row picks the class of its largest logit, as prediction does."""
        return in_order_of(self.xp_proba(np, z), z)


def in_order_of(P: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Probabilities ``P`` (m, K), >= 0, raised by the fewest units in the last place that
    put each row in the strict order of the logits ``z``: equal logits keep equal values.

    Rounding ties classes whose logits differ: saturated sigmoid units (g(40) and g(41)
    are 1 - 4e-18 and 1 - 2e-18, one number in float64) or logits a hair apart under a
    softmax. Their probabilities differ by less than a unit in the last place, so a step
    of one unit is as close to the exact value as the rounded one, and ``argmax(P)`` is
    then ``argmax(z)`` in every dtype (the lowest index among equal logits). Rows already
    in order, the usual case, are returned unchanged, bit for bit; a row with a value
    that is not finite is left as it is. A row's sum moves by a few units in the last place.
    """
    P = np.asarray(P)
    if P.ndim != 2 or P.dtype.kind != "f" or P.shape[1] < 2:
        return P
    bits = np.dtype(f"i{P.dtype.itemsize}")  # non-negative floats order as their bit patterns do
    order = np.argsort(z, axis=1, kind="stable")
    sorted_z = np.take_along_axis(z, order, axis=1)
    # rank: the position of each logit among the row's distinct ones, smallest first
    rank = np.zeros(sorted_z.shape, dtype=bits)
    np.cumsum(sorted_z[:, 1:] > sorted_z[:, :-1], axis=1, out=rank[:, 1:])
    raised = np.take_along_axis(P, order, axis=1).view(bits)
    # the least values >= P that grow by at least one unit from each distinct logit to the next
    raised = np.maximum.accumulate(raised - rank, axis=1) + rank
    result = np.empty_like(P)
    np.put_along_axis(result, order, raised.view(P.dtype), axis=1)
    finite = np.all(np.isfinite(P), axis=1) & np.all(np.isfinite(z), axis=1)
    return np.where(finite[:, None], result, P)


# ------------------------------------------------------------ the fast kernel's in-place forms


def _sigmoid_in_place(z: np.ndarray) -> np.ndarray:
    """g(z) over ``z`` as 0.5 tanh(z/2) + 0.5: exact in real numbers, within an ulp of 1 of
    ``expit`` (absolute), never overflowing, and several times faster (NumPy vectorises
    tanh). For activations feeding a product and a_L - y; ``forward``'s outputs keep expit."""
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


def _back_sigmoid(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    # given -p: (-p) .* a .* (a - 1) = p .* a (1 - a), every step in place (the signs cancel exactly)
    p *= a
    a -= 1
    p *= a
    return p


def _back_tanh(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    # given -p: (-p) .* (a^2 - 1) = p .* (1 - a^2), in place
    a *= a
    a -= 1
    p *= a
    return p


def _back_relu(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    # sign(a) is the indicator [a > 0] for a >= 0
    p *= np.sign(a, out=a)
    return p


def _log1p_exp_minus_abs(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(-|z|)), a new array: the part of softplus that needs care."""
    t = np.abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    return np.log1p(t, out=t)


def _sigmoid_loss_sum(z: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None) -> Any:
    """sum_i w_i sum_k [softplus(z_ik) - y_ik z_ik], without per-example sums when w = 1.

    softplus(z) = max(z, 0) + log1p(exp(-|z|)). Unweighted, the three parts are summed
    separately: no (m, K) temporary for ``Y * z`` and none for the total.
    """
    if sample_weight is not None:
        softplus = _log1p_exp_minus_abs(z)
        softplus += np.maximum(z, 0)
        softplus -= Y * z
        return softplus.sum(axis=1) @ sample_weight
    return _log1p_exp_minus_abs(z).sum() + np.maximum(z, 0).sum() - np.vdot(Y, z)


def _sigmoid_loss_and_delta(z: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None) -> tuple[Any, np.ndarray]:
    """The loss, then a_L - y over ``z``."""
    loss = _sigmoid_loss_sum(z, Y, sample_weight)
    delta = _sigmoid_in_place(z)
    delta -= Y
    return loss, delta


def _softmax_loss_and_delta(z: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None) -> tuple[Any, np.ndarray]:
    """sum_i w_i [logsumexp(z_i) - y_i . z_i] and delta = softmax(z) - Y, over ``z``."""
    yz = np.einsum("ij,ij->i", Y, z) if sample_weight is not None else np.vdot(Y, z)
    zmax = z.max(axis=1, keepdims=True)
    z -= zmax
    np.exp(z, out=z)
    total = z.sum(axis=1, keepdims=True)
    lse = np.log(total)
    lse += zmax
    z /= total
    z -= Y
    if sample_weight is not None:
        return (lse[:, 0] - yz) @ sample_weight, z
    return lse.sum() - yz, z


# ------------------------------------------------------------ the registries

#: Hidden activations by name. Add one with :func:`register_activation`; remove one with
#: ``del ACTIVATIONS[name]``.
ACTIVATIONS: dict[str, Activation] = {
    # the course's
    "sigmoid": Activation(
        "sigmoid",
        expit,
        lambda xp, a: a * (1 - a),
        display=(0.0, 1.0),
        kernel=HiddenKernel(_sigmoid_in_place, _back_sigmoid, negated=True),
        onnx=("Sigmoid",),
    ),
    "tanh": Activation(
        "tanh",
        lambda xp, z: xp.tanh(z),
        lambda xp, a: 1 - a * a,
        display=(-1.0, 1.0),
        kernel=HiddenKernel(lambda z: np.tanh(z, out=z), _back_tanh, negated=True),
        onnx=("Tanh",),
    ),
    "relu": Activation(
        "relu",
        lambda xp, z: xp.maximum(z, xp.zeros_like(z)),
        lambda xp, a: xp.where(a > 0, xp.ones_like(a), xp.zeros_like(a)),
        init="he",
        kernel=HiddenKernel(lambda z: np.maximum(z, 0, out=z), _back_relu),
        onnx=("Relu",),
    ),
}


def _sigmoid_units_loss(xp: Any, z: Any, Y: Any) -> Any:
    # -y log g(z) - (1 - y) log(1 - g(z)) = softplus(z) - y z: finite where g(z) rounds to 0 or 1.
    return xp.sum(softplus(xp, z) - Y * z, axis=1)


def _softmax_loss(xp: Any, z: Any, Y: Any) -> Any:
    # -sum_k y_k log softmax(z)_k = logsumexp(z) - y . z for a one-hot row y.
    return logsumexp(xp, z) - xp.sum(Y * z, axis=1)


#: Output layers by name. Add one with :func:`register_output`; remove one with
#: ``del OUTPUTS[name]``. For the built-in ones, delta = h - y exactly: the output's
#: derivative cancels against its loss's (sigmoid units under per-unit cross-entropy;
#: softmax under multinomial cross-entropy with one-hot y), for these pairings only.
OUTPUTS: dict[str, Output] = {
    # The course's independent sigmoid units, one per class. As probabilities their
    # values are normalised to sum 1 per row (on log g(z), so that saturated units stay
    # finite): the order, hence the prediction, is kept, but this is not a calibration.
    "sigmoid": Output(
        "sigmoid",
        expit,
        _sigmoid_units_loss,
        lambda xp, z, Y: expit(xp, z) - Y,
        lambda xp, z: softmax(xp, log_expit(xp, z)),
        kernel=OutputKernel(_sigmoid_loss_and_delta, _sigmoid_loss_sum, lambda z: special.expit(z, out=z)),
        # log g(z) = -softplus(-z), then softmax
        onnx=("Neg", "Softplus", "Neg", "Softmax"),
    ),
    # Multinomial cross-entropy, as scikit-learn's MLPClassifier uses for several classes.
    "softmax": Output(
        "softmax",
        softmax,
        _softmax_loss,
        lambda xp, z, Y: softmax(xp, z) - Y,
        softmax,
        kernel=OutputKernel(_softmax_loss_and_delta),
        onnx=("Softmax",),
    ),
}

_Entry = TypeVar("_Entry", Activation, Output)


def _register(registry: MutableMapping[str, _Entry], entry: _Entry, replace: bool) -> _Entry:
    if entry.name in registry and not replace:
        raise ValueError(f"{entry.name!r} is registered already (replace=True replaces it)")
    registry[entry.name] = entry
    return entry


def register_activation(name: str, function: Form, derivative: Form, *, replace: bool = False, **kw: Any) -> Activation:
    """Add a hidden activation to :data:`ACTIVATIONS`: every part of nnlearn takes its name then.

    ``function(xp, z)`` and ``derivative(xp, a)`` (from a = g(z)) are written with the
    functions of the namespace ``xp`` (``numpy`` for NumPy arrays); the keywords are
    :class:`Activation`'s other attributes (``init``, ``display``, ``kernel``,
    ``array_api``). Only this process knows the kind: a model file of it loads where it
    is registered again. Raises ValueError for a name registered already (unless
    ``replace``) or a malformed name, init or display. For example::

        register_activation("softsign", lambda xp, z: z / (1 + xp.abs(z)),
                            lambda xp, a: (1 - xp.abs(a)) ** 2, display=(-1, 1))
    """
    return _register(ACTIVATIONS, Activation(name, function, derivative, **kw), replace)


def register_output(
    name: str, function: Form, loss: Form, delta: Form, proba: Form, *, replace: bool = False, **kw: Any
) -> Output:
    """Add an output layer to :data:`OUTPUTS`, as :func:`register_activation` does an
    activation: ``function(xp, z)``, ``loss(xp, z, Y)`` (shape (m,)), ``delta(xp, z, Y)``,
    ``proba(xp, z)`` and the keywords are :class:`Output`'s attributes."""
    return _register(OUTPUTS, Output(name, function, loss, delta, proba, **kw), replace)
