"""The network's mathematics: pure functions on arrays, importing nothing else of nnlearn.

NumPy arrays throughout; the reference (``backprop``) takes any array API library's too.

==================  ==============================================================
``activations``     the registries: one entry per kind of hidden unit and output layer
``network``         :class:`Network` (sizes, activation, output); shapes, packing, init
``backprop``        the reference feedforward and backpropagation, to be read
``kernels``         the fast kernel, tested equal to the reference
``arrayapi``        arrays of PyTorch, CuPy, ... through the array API; special functions
``objective``       J and its gradient from the kernel's sums, with the penalty
``labels``          one-hot encoding of labels
==================  ==============================================================

Conventions are the course notebook's: ``thetas`` are weight matrices of shapes
(s_{l+1}, s_l + 1) with the bias in column 0, ``X`` is (m, n) without a bias column,
``Y`` is one-hot (m, K). Functions that need a network's kinds take ``network=``; None
means the course's network of sigmoid hidden units and sigmoid outputs. A new kind is one
registry entry: :func:`register_activation`, :func:`register_output`.
"""

from .activations import (
    ACTIVATIONS,
    OUTPUTS,
    Activation,
    HiddenKernel,
    Output,
    OutputKernel,
    register_activation,
    register_output,
    sigmoid,
    sigmoid_gradient,
)
from .kernels import data_term, forward, output_preactivation
from .labels import one_hot
from .network import (
    Network,
    NetworkLike,
    debug_matrix,
    init_debug,
    init_random,
    layer_sizes_of,
    pack,
    theta_shapes,
    unpack,
)
from .objective import cost, cost_and_gradient, from_sums, regularization, total_weight

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Activation",
    "HiddenKernel",
    "Network",
    "NetworkLike",
    "Output",
    "OutputKernel",
    "cost",
    "cost_and_gradient",
    "data_term",
    "debug_matrix",
    "forward",
    "from_sums",
    "init_debug",
    "init_random",
    "layer_sizes_of",
    "one_hot",
    "output_preactivation",
    "pack",
    "register_activation",
    "register_output",
    "regularization",
    "sigmoid",
    "sigmoid_gradient",
    "theta_shapes",
    "total_weight",
    "unpack",
]
