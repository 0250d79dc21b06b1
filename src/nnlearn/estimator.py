"""``NeuralNetClassifier``: nnlearn's network as a scikit-learn classifier.

The estimator validates its input with scikit-learn's helpers and hands the work to
:mod:`nnlearn.training` (the same code as :func:`nnlearn.train`); it holds no maths of
its own. Its parameters are the training settings' declaration
(:data:`nnlearn.training.SETTINGS`), each defaulting to None: the preset's value, else
the course's. Fitted state ends in ``_``, as scikit-learn's conventions ask.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import sys
import warnings
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .datasets._check import check_label_kinds, is_complex
from .errors import DataError
from .model import Model
from .optim import MINI_BATCH
from .training import DEFAULTS, SETTINGS, Continuation, Options, fit
from .training._checks import check_cluster_parameter, check_sample_weight, check_warm_shape, random_state_of
from .training._presets import preset_options
from .training._train import data_terms

__all__ = ["NeuralNetClassifier"]

#: The estimator's parameter of each setting that has one (``seed`` is ``random_state``).
SETTING_OF = {spec.estimator: name for name, spec in SETTINGS.items() if spec.estimator}
#: The parameters that are not training settings, with their defaults.
OWN_PARAMETERS = {"preset": None, "warm_start": False, "verbose": False, "cluster": None}
#: random_state keeps scikit-learn's meaning of None (a seed drawn from NumPy's global
#: state), so its default is the course's seed itself.
_DEFAULTS = {**{param: None for param in SETTING_OF}, "random_state": DEFAULTS.seed, **OWN_PARAMETERS}
#: What the setting parameters left at None take without a preset: the course's settings
#: with the estimator's own defaults (scikit-learn's lbfgs).
ESTIMATOR_DEFAULTS = replace(
    DEFAULTS, **{name: spec.estimator_default for name, spec in SETTINGS.items() if spec.estimator_default is not None}
)


_SIGNATURE = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value) for name, value in _DEFAULTS.items()]
)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's kernel app is running)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _mini_batch_optimizer(estimator):
    """``available_if`` check: partial_fit exists only for the mini-batch optimisers."""
    optimizer = estimator._setting("optimizer")
    if optimizer not in MINI_BATCH:
        raise AttributeError(
            f"partial_fit needs a mini-batch optimizer ({' or '.join(map(repr, MINI_BATCH))}); this estimator has "
            f"optimizer={optimizer!r}, which trains on all the data at once: use fit"
        )
    return True


def _parameters_doc():
    """The Parameters section, from the settings' declaration."""
    lines = []
    for param, name in SETTING_OF.items():
        spec, default = SETTINGS[name], getattr(ESTIMATOR_DEFAULTS, name)
        lines += [f"{param} : default={_DEFAULTS[param]!r}", f"    {spec.help[0].upper()}{spec.help[1:]}."]
        if param != "random_state":
            lines.append(f"    None: the preset's, else {default!r}.")
    return "\n    ".join(lines)


class NeuralNetClassifier(ClassifierMixin, BaseEstimator):
    """Feedforward network trained by backpropagation, as in the classic course.

    By default every layer, the output layer included, applies the logistic sigmoid and
    the cost is the regularised cross-entropy of independent sigmoid outputs, one per
    class, as in the course (see :mod:`nnlearn.core`); ``activation`` and ``output``
    choose other kinds. Binary problems get two output units, like any other.

    Parameters
    ----------
    {settings}
    preset : str, default=None
        A name in :data:`nnlearn.training.PRESETS` (``"course"``, ``"best"``): the
        settings left at None take its values. ``get_params`` returns what was passed, so
        ``clone``, ``set_params`` and ``GridSearchCV`` search over it like any parameter.
    warm_start : bool, default=False
        ``fit`` starts from the previous fit's weights instead of random ones; ``n_iter_``
        and ``loss_curve_`` go on counting, as scikit-learn's MLPClassifier's do.
    verbose : bool, default=False
        Print the cost after every iteration.
    cluster : distributed.Client, str or int, default=None
        Train on a Dask cluster (``pip install "nnlearn[cluster]"``): a live client, as
        ``DaskLGBMClassifier(client=...)`` takes one; ``"current"``, the client
        ``distributed.get_client()`` finds when ``fit`` runs; a scheduler address
        (``"tcp://host:8786"``); or a number of local worker processes. Full-batch
        optimisers only. ``clone`` (and so ``GridSearchCV``) gives the clone the same
        client, not a copy; an estimator holding a client cannot be pickled (give an
        address for ``n_jobs`` > 1).

    ``random_state`` seeds the initial weights, the shuffling and the validation split;
    its default is a fixed seed, as in :func:`nnlearn.train`: ``random_state=s`` gives the
    weights of ``nnlearn.train(..., seed=s)``, and None draws a seed from NumPy's global
    random state.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
        Output unit k stands for ``classes_[k]``.
    network_ : nnlearn.core.Network
        The fitted network's layer sizes, activation and output.
    thetas_ : list of ndarray, shapes (s_{{l+1}}, s_l + 1)
        The course's weight matrices, bias in column 0.
    coefs_ : list of ndarray, shapes (s_l, s_{{l+1}})
        scikit-learn's layout of the same weights: ``thetas_[l][:, 1:].T`` (views).
    intercepts_ : list of ndarray, shapes (s_{{l+1}},)
        ``thetas_[l][:, 0]`` (views).
    n_iter_ : int
        Iterations (epochs for mini-batch optimisers) run, over every warm-started
        ``fit`` and every ``partial_fit`` call.
    loss_curve_ : list of float
        The cost after each of those iterations; for mini-batch optimisers the epoch's
        mean batch cost (see :mod:`nnlearn.optim`).
    validation_scores_ : list of float or None
        Validation accuracy per iteration (epoch) with early stopping, else None.
    validation_losses_ : list of float or None
        Validation loss (mean cross-entropy, no penalty) per iteration (epoch) with early
        stopping, else None.
    best_validation_score_ : float or None
        The best of them: its iteration's weights are the fitted ones (of equal scores, the
        one with the lowest validation loss).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    Notes
    -----
    **Probabilities.** With ``output="softmax"`` they are the softmax's outputs. The
    course's sigmoid output units are independent one-vs-all sigmoids: each
    estimates "is it class k?" on its own, and their values need not add up to 1.
    ``predict_proba`` divides each row of outputs by its sum. This keeps their order, so
    the most probable class is the predicted one, but it is a normalisation, not a
    calibrated softmax; use :class:`sklearn.calibration.CalibratedClassifierCV` when
    calibrated probabilities matter. In every dtype ``argmax(predict_proba(X))`` is
    ``predict(X)``'s class, the output layer's largest logit (the first of equal ones):
    where rounding would tie two classes whose logits differ (saturated sigmoid units),
    the larger logit's probability is a unit in the last place above the other's.

    **Example weights** count their examples (the cost divides by their sum), so their
    scale matters with ``lam`` > 0; a sum the training dtype cannot compute with is refused,
    not rescaled (:func:`nnlearn.training._checks.check_sample_weight`).

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import MinMaxScaler
    >>> from sklearn.model_selection import cross_val_score
    >>> from nnlearn import NeuralNetClassifier, load_digits8
    >>> X, y = load_digits8()
    >>> clf = make_pipeline(MinMaxScaler(), NeuralNetClassifier(max_iter=100))
    >>> bool(cross_val_score(clf, X, y, cv=3).mean() > 0.9)
    True
    """

    def __init__(self, **params):
        # The signature below is the declaration's: scikit-learn reads the parameters off it.
        bound = _SIGNATURE.bind(self, **params)  # TypeError naming an unknown parameter
        for name, value in {**_DEFAULTS, **bound.arguments}.items():
            if name != "self":
                setattr(self, name, value)

    __init__.__signature__ = _SIGNATURE  # type: ignore[attr-defined]

    # -- fitting -----------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the network to (X, y).

        Parameters
        ----------
        X : array-like of shape (m, n)
        y : array-like of shape (m,)
            At least two distinct labels, of any kind.
        sample_weight : array-like of shape (m,), optional
            Example weights; a weight of 2 counts like the example given twice.

        Returns
        -------
        self
        """
        options = self._options()
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=True, dtype=options.dtype)
        classes = self._check_classes(np.unique(y))
        warm = self.warm_start and hasattr(self, "thetas_")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start needs the classes of the previous fit, {self.classes_.tolist()}; "
                f"y has {classes.tolist()}: set warm_start=False to start afresh"
            )
        self.classes_ = classes
        if warm:
            self._check_warm_shape(options, X.shape[1], "warm_start", "set warm_start=False")
        start = Continuation.from_weights(self.thetas_) if warm else None
        fitted = self._fit(X, y, options, sample_weight, resume=start)
        result = fitted.result
        self.n_iter_ = (self.n_iter_ if warm else 0) + result.n_iter
        self.loss_curve_ = (list(self.loss_curve_) if warm else []) + list(result.history)
        scores = getattr(result, "validation_scores", None) if options.early_stopping else None
        self.validation_scores_ = scores or None
        self.validation_losses_ = (getattr(result, "validation_losses", None) or None) if scores else None
        self.best_validation_score_ = max(scores) if scores else None
        # partial_fit goes on from a mini-batch fit's last state; early stopping's fitted
        # weights are its best iteration's, not its last, so partial_fit starts from them.
        keep = options.is_minibatch and not options.early_stopping
        self._continuation = fitted.continuation if keep else None
        if result.reason == "max_iter":
            warnings.warn(
                f"{options.optimizer} stopped at max_iter={options.max_iter} iterations before converging "
                "(its tolerance was not met); raise max_iter to train further",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    @available_if(_mini_batch_optimizer)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of the mini-batch optimiser over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (m, n)
        y : array-like of shape (m,)
        classes : array-like of shape (K,), optional
            Every label y may ever take; required on the first call.
        sample_weight : array-like of shape (m,), optional

        Returns
        -------
        self
        """
        options = self._options()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit: every label y may take")
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=first, dtype=options.dtype)
        if classes is not None:
            classes = np.unique(classes)
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()} differ from the first call's {self.classes_.tolist()}")
        if first:
            self.classes_ = self._check_classes(classes)
            self.n_iter_, self.loss_curve_ = 0, []
            self.validation_scores_ = self.validation_losses_ = self.best_validation_score_ = None
        if not first:
            self._check_warm_shape(options, X.shape[1], "partial_fit", "fit with warm_start=False")
        start = getattr(self, "_continuation", None)
        if start is None and not first:
            start = Continuation.from_weights(self.thetas_)
        # partial_fit is one epoch on the data given, going on from the last call's state;
        # like scikit-learn's, it never holds data out nor stops early.
        epochs = start.n_iter if start is not None else 0
        options = replace(options, max_iter=epochs + 1, early_stopping=False)
        fitted = self._fit(X, y, options, sample_weight, resume=start)
        self.n_iter_ += fitted.result.n_iter - epochs
        self.loss_curve_ = [*self.loss_curve_, *fitted.result.history[epochs:]]
        self._continuation = fitted.continuation
        return self

    def _base(self) -> Options:
        """The options the parameters left at None take: the preset's, else the course's
        with the estimator's own defaults."""
        return ESTIMATOR_DEFAULTS if self.preset is None else preset_options(self.preset)

    def _setting(self, name):
        """One setting's value as a fit would take it (unchecked)."""
        value = getattr(self, SETTINGS[name].estimator)
        return getattr(self._base(), name) if value is None else value

    def _options(self) -> Options:
        """The estimator's parameters as checked :class:`~nnlearn.training.Options`."""
        base = self._base()
        given = {SETTING_OF[param]: getattr(self, param) for param in SETTING_OF if param != "random_state"}
        given = {name: value for name, value in given.items() if value is not None}
        options = replace(base, **given, seed=self._seed())
        options = options.checked(labels={name: param for param, name in SETTING_OF.items()})
        if self.cluster is not None:
            check_cluster_parameter(self.cluster, options.optimizer)
        return options

    def _validate(self, X, y, sample_weight, reset, dtype):
        _check_real(X, "X")
        _check_real(y, "y")
        check_label_kinds(y, "y")  # before NumPy makes a list's numbers text, or fails to sort them
        X, y = validate_data(self, X, y, dtype=np.dtype(dtype), reset=reset)
        check_classification_targets(y)
        if sample_weight is not None:
            # scikit-learn's reading of the weights (a number, a list, ...), then nnlearn's
            # check that their sum suits the training dtype (check_sample_weight)
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return X, y, sample_weight

    def _check_warm_shape(self, options, n_features, going_on, afresh):
        network = options.network(n_features, self.classes_.size)
        check_warm_shape(self.network_, network, options.hidden_layer_sizes, going_on, afresh)

    @staticmethod
    def _check_classes(classes):
        if classes.size < 2:
            raise ValueError(
                f"NeuralNetClassifier needs at least two classes to fit; y has one class, {classes.tolist()}"
            )
        return classes

    def _seed(self):
        """An int seed: ``random_state`` itself when it is one, so that the estimator and
        :func:`nnlearn.train` with that seed start from the same weights (None, an int or a
        RandomState, as scikit-learn takes it: :func:`~nnlearn.training._checks.random_state_of`)."""
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(random_state_of(self.random_state).randint(np.iinfo(np.int32).max))

    def __sklearn_clone__(self):
        """``sklearn.base.clone``: the parameters copied as scikit-learn copies them, but a
        live ``distributed.Client`` shared, since a connection cannot be copied."""
        params = self.get_params(deep=False)
        cluster = params.pop("cluster")
        return type(self)(**{name: clone(value, safe=False) for name, value in params.items()}, cluster=cluster)

    def _fit(self, X, y, options, sample_weight, resume):
        with data_terms(self.cluster) as data_term, self._progress(options.max_iter) as progress:
            fitted = fit(
                X,
                y,
                options,
                classes=self.classes_,
                sample_weight=sample_weight,
                callback=progress,
                resume=resume,
                data_term=data_term,
            )
        self.thetas_, self.network_, self.options_ = fitted.model.thetas, fitted.model.network, options
        return fitted

    def _html_repr(self):
        """Jupyter's view: scikit-learn's parameter box, then, once fitted, the network, its
        training and its cost curve (:mod:`nnlearn.model._display`)."""
        box = super()._html_repr()
        if not hasattr(self, "thetas_"):
            return box
        from .model._display import model_html

        extra = [("n_iter_", self.n_iter_)]
        if getattr(self, "best_validation_score_", None) is not None:
            extra.append(("best_validation_score_", f"{self.best_validation_score_:.2%}"))
        return box + model_html(self.to_model(), extra)

    @contextlib.contextmanager
    def _progress(self, total):
        """The ``verbose`` callback, the one place nnlearn's library code shows anything: in
        a Jupyter kernel, tqdm's auto bar (the notebook's widget where ipywidgets is
        installed) with the cost beside it; elsewhere a line per iteration, as
        scikit-learn's MLPClassifier prints."""
        if not self.verbose:
            yield None
            return
        if not in_notebook():

            def report(iteration, J, x):
                print(f"Iteration {iteration}, cost = {J:.8f}")

            yield report
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="training", unit="it")

        def advance(iteration, J, x):
            bar.set_postfix(cost=f"{J:.6g}", refresh=False)
            bar.update(iteration - bar.n)

        try:
            yield advance
        finally:
            bar.close()

    # -- fitted weights in scikit-learn's layout ----------------------------------------

    @property
    def coefs_(self):
        """Weight matrices in scikit-learn's layout, shapes (s_l, s_{l+1}): views of ``thetas_``."""
        return [theta[:, 1:].T for theta in self.thetas_]

    @property
    def intercepts_(self):
        """Bias vectors, shapes (s_{l+1},): views of ``thetas_``' column 0."""
        return [theta[:, 0] for theta in self.thetas_]

    # -- prediction ---------------------------------------------------------------------

    def to_model(self):
        """The fitted network as a :class:`nnlearn.Model` (to save, or to use the course's API)."""
        check_is_fitted(self)
        history = {"cost": list(self.loss_curve_), "optimizer": self.options_.optimizer, "n_iter": int(self.n_iter_)}
        return Model(self.thetas_, self.classes_, self.options_.lam, history, network=self.network_)

    def _checked_X(self, X):
        check_is_fitted(self)
        _check_real(X, "X")
        return validate_data(self, X, dtype=self.thetas_[0].dtype, reset=False)

    def predict_proba(self, X):
        """Class probabilities: the softmax's outputs, or the sigmoid outputs normalised to sum 1 per row.

        Parameters
        ----------
        X : array-like of shape (m, n)

        Returns
        -------
        proba : ndarray of shape (m, K)
            Column k is class ``classes_[k]``; see the class Notes on how the course's
            independent sigmoid outputs become probabilities.
        """
        X = self._checked_X(X)
        return self.to_model().predict_proba(X)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, shape (m, K)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The class of the most active output unit, shape (m,)."""
        X = self._checked_X(X)
        return self.to_model().predict(X)


def _check_real(X, name):
    """Complex numbers refused in one line (scikit-learn's message prints the array), led by
    the words scikit-learn's own checks look for."""
    if is_complex(X):
        raise DataError(f"Complex data not supported: {name} holds complex numbers; nnlearn trains on real numbers")


NeuralNetClassifier.__doc__ = (NeuralNetClassifier.__doc__ or "").format(settings=_parameters_doc())
