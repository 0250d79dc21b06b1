"""Training: from data and settings to a :class:`~nnlearn.model.Model`, by one path.

==================  ==============================================================
``_settings``       :class:`Options`: every training setting, declared once
``_presets``        named settings (``course``, ``best``)
``_train``          :func:`train` and :func:`fit`, the one fitting path
``_fitting``        the optimiser run on a data term: early stopping, augmentation
``_augment``        distorted copies of the training images
``_checkpoints``    a run's state in a file, to resume it
==================  ==============================================================
"""

from ._augment import Augment, distort
from ._checkpoints import load_checkpoint, save_checkpoint
from ._presets import PRESETS
from ._settings import DEFAULTS, Options
from ._train import Fitted, fit, train

__all__ = [
    "train",
    "fit",
    "Fitted",
    "Options",
    "DEFAULTS",
    "PRESETS",
    "Augment",
    "distort",
    "save_checkpoint",
    "load_checkpoint",
]
