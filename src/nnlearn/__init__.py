"""nnlearn: neural-network learning as the classic course teaches it.

A feedforward network, its regularised cross-entropy cost, backpropagation, gradient
checking and training, from the course's 400-25-10 sigmoid digit network to any number of
hidden layers of any registered kind (``nnlearn.core.ACTIVATIONS`` and ``OUTPUTS``). The
packages, from the maths up: ``core``, ``optim``, ``persist``, ``datasets``, ``compute``,
``model``, ``training``, ``reporting``; the surfaces ``estimator``, ``cli`` and ``web``.
"""

from ._version import __version__
from .core import (
    Network,
    cost,
    cost_and_gradient,
    forward,
    init_debug,
    init_random,
    one_hot,
    pack,
    sigmoid,
    sigmoid_gradient,
    unpack,
)
from .core.gradcheck import check_directional, check_gradients, numerical_gradient
from .datasets import load_data, load_digits8, load_digits20, split
from .errors import DataError, ModelFileError, NNLearnError, ParameterError, ShapeError, TrainingError
from .model import Model, load_model, load_octave_model, load_pretrained, load_weights, save_model, write_octave_weights
from .training import train


def __getattr__(name):
    # The estimator needs scikit-learn, whose import costs more than the rest of nnlearn
    # together: load it on first use, not on every `import nnlearn`.
    if name == "NeuralNetClassifier":
        from .estimator import NeuralNetClassifier

        return NeuralNetClassifier
    raise AttributeError(f"module 'nnlearn' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Network",
    "sigmoid",
    "sigmoid_gradient",
    "init_random",
    "init_debug",
    "pack",
    "unpack",
    "forward",
    "cost",
    "cost_and_gradient",
    "check_gradients",
    "check_directional",
    "numerical_gradient",
    "train",
    "NeuralNetClassifier",
    "Model",
    "save_model",
    "load_model",
    "load_octave_model",
    "load_pretrained",
    "load_weights",
    "write_octave_weights",
    "load_data",
    "load_digits20",
    "load_digits8",
    "one_hot",
    "split",
    "NNLearnError",
    "DataError",
    "ModelFileError",
    "ParameterError",
    "ShapeError",
    "TrainingError",
]
