"""What a training setting is: :class:`Setting` (everything a surface needs of one), its
web form field, and the checks the declaration builds its settings from.

The settings themselves are declared in :mod:`nnlearn.training._settings`, each once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = [
    "Setting",
    "WebField",
    "REQUIRED",
    "DTYPES",
    "setting",
    "is_int",
    "is_real",
    "hidden_sizes",
    "registered",
    "one_of",
    "dtype_name",
    "epsilon_text",
]

DTYPES = ("float64", "float32")


def is_int(value: Any, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= low


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class WebField:
    """How the web app's training form offers a setting.

    ``key``: its name in the JSON body; ``default``: the form's own default where it
    differs from the library's (a shorter run); ``minimum``: the least value the form's
    number input takes (the check says the same); ``limit``: the attribute of
    :class:`nnlearn.web.Limits` that bounds it from above on a server (for hidden layer
    sizes, ``max_hidden_layers`` bounds their count too).
    """

    key: str
    default: Any = None
    minimum: float | None = None
    limit: str | None = None


@dataclass(frozen=True)
class Setting:
    """One training setting as every surface needs it (an :class:`Options` field's metadata).

    Attributes
    ----------
    title : str
        How messages name it ("lambda", "hidden layer sizes").
    requirement : str
        What a value must do, completing "``title`` must ...": "be an integer >= 1".
    valid : callable
        ``valid(value) -> bool``, or None for a setting whose check is :attr:`normalise`'s.
    normalise : callable
        ``normalise(value) -> value``: a valid value in its one form (a tuple of ints,
        a float, ...); it may raise ParameterError itself (the kinds, augmentation).
    help : str
        One line for the command line's help and the docs' table.
    default_note : str or None
        Said of the default where it is shown ("the course's").
    choices : callable or None
        ``choices() -> names``: the values a setting of names takes, read when asked (a
        registry may grow at run time); the command line's help and the web form show them.
    flag, metavar, parse, nargs, group : command-line option
        ``flag`` None: not on the command line. ``parse`` turns the text into a value;
        ``group`` the help's section ("mini-batch": read by sgd and adam only).
    cli_default : any
        The command line's spelling of the default, where it differs (``--augment 0``).
    web : WebField or None
        The web form's field, None where the form does not offer it.
    checkpoint : str or None
        Its key in a checkpoint's settings (None: not recorded).
    resumed : {"kept", "extended", "free"}
        On ``--resume``: kept from the checkpoint (a contradicting option is refused);
        extended (``max_iter`` may grow); free (the checkpoint does not hold it).
    before : any
        What a checkpoint that does not record a kept setting ran with (one written
        before the setting existed); :data:`REQUIRED`: such a checkpoint is refused.
    estimator : str or None
        The scikit-learn estimator's parameter name (None: not a parameter).
    estimator_default : any
        The estimator's default where it differs (its optimiser is scikit-learn's lbfgs).
    """

    title: str
    requirement: str
    valid: Callable[[Any], bool] | None
    normalise: Callable[[Any], Any]
    help: str
    default_note: str | None = None
    choices: Callable[[], tuple[str, ...]] | None = None
    flag: str | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    nargs: str | None = None
    group: str | None = None
    cli_default: Any = None
    web: WebField | None = None
    checkpoint: str | None = None
    resumed: str = "free"
    before: Any = None
    estimator: str | None = None
    estimator_default: Any = None

    def check(self, value: Any, label: str | None = None) -> Any:
        """``value`` checked and normalised; ParameterError naming it as ``label`` calls it."""
        if self.valid is None or self.valid(value):
            try:
                return self.normalise(value)
            except ParameterError as exc:
                raise ParameterError(f"{self._prefix(label)}{exc}") from None
        raise ParameterError(f"{self._prefix(label)}{self.title} must {self.requirement}, got {value!r}")

    def _prefix(self, label):
        return f"{label}: " if label and label != self.title else ""


#: The value of :attr:`Setting.before` for a setting every checkpoint records.
REQUIRED = object()


def setting(default: Any, **declared: Any) -> Any:
    """An :class:`Options` field: its default and its :class:`Setting`."""
    return field(default=default, metadata={"setting": Setting(**declared)})


def hidden_sizes(value):
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        sizes = tuple(value)
    except TypeError:
        raise ParameterError(f"hidden layer sizes must be positive integers, got {value!r}") from None
    if not sizes or not all(is_int(size, 1) for size in sizes):
        raise ParameterError(f"hidden layer sizes must be positive integers, got {list(sizes)}")
    return tuple(int(size) for size in sizes)


def registered(registry: Mapping[str, Any], what: str) -> Callable[[Any], str]:
    """A check that reads the registry at call time: a kind registered later is known."""

    def check(value):
        if not isinstance(value, str) or value not in registry:
            raise ParameterError(f"unknown {what} {value!r}; choose one of {', '.join(registry)}")
        return value

    return check


def one_of(choices: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def check(value):
        if not isinstance(value, str) or value not in choices:
            raise ParameterError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
        return value

    return check


def dtype_name(value):
    name = str(np.dtype(value) if isinstance(value, type) else value)
    if name not in DTYPES:
        raise ParameterError(f"dtype must be float64 or float32, got {value!r}")
    return name


def epsilon_text(text: str) -> float | str:
    return text if text == "auto" else float(text)
