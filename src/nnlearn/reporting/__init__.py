"""What a person looks at: figures, the HTML report, and the search for settings.

=====================  =================================================================
``_plots``             figures of images: the data, their distortions, the hidden units
``_training_plots``    figures of training: the cost per iteration, the confusion matrix
``_curves``            the course's learning and validation curves
``_report``            a one-page HTML report on a trained network
``_tuning_grid``       the candidate settings ``nnlearn tune`` searches
``_tuning``            settings chosen by cross-validation (``nnlearn tune``)
``_tuning_plot``       the validation curve of a search
=====================  =================================================================

Each uses the layers below it and the estimator; nothing below uses it.
"""

from ._curves import CurveSettings, plot_learning_curve, plot_validation_curve
from ._plots import plot_digits, plot_distortions, plot_hidden_units, save_figure
from ._report import write_report
from ._training_plots import plot_confusion_matrix, plot_cost_history
from ._tuning import (
    Candidate,
    CheckResult,
    SearchResult,
    SearchSettings,
    default_jobs,
    nested_check,
    search,
)
from ._tuning_grid import COURSE_SETTINGS, DEFAULT_GRID, make_grid
from ._tuning_plot import plot_search

__all__ = [
    "plot_digits",
    "plot_distortions",
    "plot_hidden_units",
    "plot_cost_history",
    "plot_confusion_matrix",
    "plot_learning_curve",
    "plot_validation_curve",
    "CurveSettings",
    "save_figure",
    "write_report",
    "DEFAULT_GRID",
    "COURSE_SETTINGS",
    "make_grid",
    "SearchSettings",
    "search",
    "nested_check",
    "Candidate",
    "SearchResult",
    "CheckResult",
    "plot_search",
    "default_jobs",
]
