"""Training: from data and settings to a :class:`~nnlearn.model.Model`, by one path.

==================  ==============================================================
``_settings``       :class:`Options`: every training setting, declared once
``_presets``        named settings (``course``, ``best``)
``_train``          :func:`train` and :func:`fit`, the one fitting path
``_fitting``        the optimiser run on a data term: early stopping, augmentation
``_augment``        distorted copies of the training images
``_continuation``   :class:`Continuation`: where a run stands, to go on from there
``_exactness``      whether a resumed run can be exact, and what differs
``_checkpoints``    a run's state in a file, checked when read
``_checks``         the inputs besides the settings: weights, memory, a cluster
==================  ==============================================================
"""

from ._augment import Augment, distort
from ._checkpoints import load_checkpoint, save_checkpoint
from ._continuation import Continuation
from ._exactness import compare_exactness, exactness_record
from ._fitting import EarlyStoppingWarning
from ._presets import PRESETS
from ._setting import Setting
from ._settings import DEFAULTS, SETTINGS, Options, check_setting
from ._train import Fitted, ResumeWarning, fit, train

__all__ = [
    "train",
    "fit",
    "Fitted",
    "Options",
    "Setting",
    "SETTINGS",
    "check_setting",
    "DEFAULTS",
    "PRESETS",
    "Augment",
    "distort",
    "Continuation",
    "ResumeWarning",
    "EarlyStoppingWarning",
    "exactness_record",
    "compare_exactness",
    "save_checkpoint",
    "load_checkpoint",
]
