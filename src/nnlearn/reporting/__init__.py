"""What a person looks at: figures, the HTML report, and the search for settings.

==================  ==============================================================
``_plots``          figures of the data, the network and its training (matplotlib)
``_curves``         the course's learning and validation curves
``_report``         a one-page HTML report on a trained network
``_tuning``         settings chosen by cross-validation (``nnlearn tune``)
==================  ==============================================================

Each uses the layers below it and the estimator; nothing below uses it.
"""

from ._curves import plot_learning_curve, plot_validation_curve
from ._plots import (
    plot_confusion_matrix,
    plot_cost_history,
    plot_digits,
    plot_distortions,
    plot_hidden_units,
    save_figure,
)
from ._report import write_report

__all__ = [
    "plot_digits",
    "plot_distortions",
    "plot_hidden_units",
    "plot_cost_history",
    "plot_confusion_matrix",
    "plot_learning_curve",
    "plot_validation_curve",
    "save_figure",
    "write_report",
]
