"""A trained network, and the files it is kept in.

==================  ==============================================================
``_model``          :class:`Model` (predict, score, cost) and its own file format
``_octave``         Octave/MATLAB weight files; the course's pretrained network
==================  ==============================================================
"""

from ._model import Model, load_model, save_model
from ._octave import load_octave_model, load_pretrained, load_weights, read_octave_weights, write_octave_weights

__all__ = [
    "Model",
    "save_model",
    "load_model",
    "load_octave_model",
    "load_pretrained",
    "load_weights",
    "read_octave_weights",
    "write_octave_weights",
]
