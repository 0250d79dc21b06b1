"""The optimisers: each minimises ``fun(x) -> (J, grad)`` over a flat weight vector.

==================  ==============================================================
``_minimize``       :func:`minimize`: SciPy's cg and lbfgs, or the course's fmincg
``_fmincg``         :func:`fmincg`, the course's conjugate gradients, to the letter
``_minibatch``      :func:`minimize_minibatch`: sgd and adam over ``fun(x, rows)``
``_steps``          sgd's and adam's update rules, and :data:`LEARNING_RATES`
``_results``        :class:`OptimizeResult` and why a run ended (:data:`REASONS`)
==================  ==============================================================

They know nothing of networks or data: the training layer (:mod:`nnlearn.training`)
hands them an objective, a starting point and a callback.
"""

from ._fmincg import fmincg
from ._minibatch import MinibatchResult, MinibatchSettings, minimize_minibatch
from ._minimize import FULL_BATCH, REPLAYING, minimize
from ._results import REASONS, Callback, Checkpoint, Fun, OptimizeResult
from ._steps import LEARNING_RATES, MINI_BATCH

#: Every optimiser, by name: the full-batch ones see all examples at each step, the
#: mini-batch ones a batch.
OPTIMIZERS = FULL_BATCH + MINI_BATCH

__all__ = [
    "FULL_BATCH",
    "REPLAYING",
    "MinibatchSettings",
    "MINI_BATCH",
    "OPTIMIZERS",
    "minimize",
    "fmincg",
    "minimize_minibatch",
    "OptimizeResult",
    "MinibatchResult",
    "REASONS",
    "LEARNING_RATES",
    "Fun",
    "Callback",
    "Checkpoint",
]
