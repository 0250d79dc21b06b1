"""The exceptions nnlearn raises for bad input, one hierarchy.

Every error a user can cause derives from :class:`NNLearnError`; those about the value of
an input also derive from :class:`ValueError`, so ``except ValueError`` keeps working.
"""


class NNLearnError(Exception):
    """Base class of every error nnlearn raises about its inputs."""


class DataError(NNLearnError, ValueError):
    """A data file or array is missing, unreadable, malformed or unusable."""


class ModelFileError(NNLearnError, ValueError):
    """A model or weight file is unreadable, tampered, too new, or would need unpickling."""


class ShapeError(NNLearnError, ValueError):
    """Weights do not chain, or do not fit the data's features or classes."""


class ParameterError(NNLearnError, ValueError):
    """An option is out of range or unknown (negative lambda, zero hidden units, ...)."""


class TrainingError(NNLearnError, RuntimeError):
    """Training diverged (non-finite cost or weights)."""


class ClusterError(NNLearnError, ValueError):
    """A cluster cannot be used: nothing Dask answers at its address, it has no workers,
    or its workers lack this nnlearn."""


class ExamplesLost(TrainingError):
    """The examples cannot be reached any more (a cluster's scheduler went away).

    ``model`` holds the weights reached before, when training had started: nothing is
    lost but the iterations still to come.
    """

    model = None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
