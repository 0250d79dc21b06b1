"""``NeuralNetClassifier``: nnlearn's network as a scikit-learn classifier.

The estimator validates its input with scikit-learn's helpers and hands the work to
:mod:`nnlearn.training._train` (the same code as :func:`nnlearn.train`); it holds no maths of
its own. Fitted state ends in ``_``, as scikit-learn's conventions ask.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from .model._model import Model
from .training._settings import DEFAULTS, ESTIMATOR_OPTIMIZER, MINI_BATCH, MiniBatch, Options, check_cluster_parameter
from .training._train import data_terms, fit

__all__ = ["NeuralNetClassifier"]


def _mini_batch_optimizer(estimator):
    """``available_if`` check: partial_fit exists only for the mini-batch optimisers."""
    if estimator.optimizer not in MINI_BATCH:
        raise AttributeError(
            f"partial_fit needs a mini-batch optimizer ('sgd' or 'adam'); this estimator has "
            f"optimizer={estimator.optimizer!r}, which trains on all the data at once: use fit"
        )
    return True


class NeuralNetClassifier(ClassifierMixin, BaseEstimator):
    """Feedforward network trained by backpropagation, as in the classic course.

    By default every layer, the output layer included, applies the logistic sigmoid and
    the cost is the regularised cross-entropy of independent sigmoid outputs, one per
    class, as in the course (see :mod:`nnlearn.core`); ``activation`` and ``output``
    choose other kinds. Binary problems get two output units, like any other.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(25,)
        Units in each hidden layer.
    lam : float, default=1.0
        Regularisation strength lambda: the penalty is lam/(2m) times the sum of the
        squared non-bias weights.
    optimizer : {"lbfgs", "cg", "fmincg", "sgd", "adam"}, default="lbfgs"
        Full-batch ``"lbfgs"``, ``"cg"``, ``"fmincg"`` (:mod:`nnlearn.optim._minimize`), or
        mini-batch ``"sgd"`` (with Nesterov momentum 0.9) and ``"adam"``
        (:mod:`nnlearn.optim._minibatch`).
    max_iter : int, default=400
        Iterations at most; for ``"sgd"`` and ``"adam"`` an iteration is an epoch.
    tol : float or None, default=None
        None: each optimiser's own default (SciPy's for ``"lbfgs"`` and ``"cg"``, no
        tolerance for ``"fmincg"``, 1e-4 for the mini-batch ones). For ``"sgd"`` and
        ``"adam"`` training stops after ``n_iter_no_change`` epochs that do not improve
        the epoch cost (or, with early stopping, the validation accuracy) by more than
        ``tol``.
    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        The hidden units' activation.
    output : {"sigmoid", "softmax"}, default="sigmoid"
        The course's independent sigmoid outputs with per-unit cross-entropy, or a
        softmax with multinomial cross-entropy (as scikit-learn's MLPClassifier).
    epsilon_init : float or "auto", default=0.12
        Initial weights are uniform in [-epsilon_init, epsilon_init]; ``"auto"`` scales
        each layer (sqrt(6 / (fan_in + fan_out)), He's sqrt(6 / fan_in) for relu).
    batch_size : int, default=200
        Examples per step of the mini-batch optimisers (at most the number of examples).
    learning_rate : float or None, default=None
        Step size of the mini-batch optimisers; None: 0.1 for ``"sgd"``, 0.01 for ``"adam"``.
    early_stopping : bool, default=False
        Every optimiser: hold out a stratified ``validation_fraction`` of the training
        data, stop when its accuracy has not improved for ``n_iter_no_change`` iterations
        (epochs), and keep the weights of the best one.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        With early stopping, iterations (epochs) without improvement of the validation
        accuracy; without it, epochs without improvement of a mini-batch optimiser's cost.
    augment : int or nnlearn.training._augment.Augment, default=None
        Also train on distorted copies of the training images (:mod:`nnlearn.training._augment`):
        a number of copies of each, or an ``Augment``; None or 0: off. ``X``'s rows must
        be square images, column-major unless the ``Augment`` says otherwise. Only what
        ``fit`` is given is distorted (under cross-validation, the fold's training part),
        after the early-stopping split.
    warm_start : bool, default=False
        ``fit`` starts from the previous fit's weights instead of random ones.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the computation and of the fitted weights.
    random_state : int, RandomState instance or None, default=0
        Seeds the initial weights, the shuffling and the validation split. The default
        is a fixed seed, as in :func:`nnlearn.train`: fitting twice gives the same model,
        and ``random_state=s`` gives the weights of ``nnlearn.train(..., seed=s)``.
        None draws a seed from NumPy's global random state.
    cluster : str or int, default=None
        Train on a Dask cluster (``pip install "nnlearn[cluster]"``): a scheduler address
        (``"tcp://host:8786"``) or a number of local worker processes; full-batch
        optimisers only. A live ``distributed.Client`` is not accepted here, since
        scikit-learn's ``clone`` copies parameters and a client cannot be copied: give its
        scheduler address (``client.scheduler.address``).
    verbose : bool, default=False
        Print the cost after every iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
        Output unit k stands for ``classes_[k]``.
    network_ : nnlearn.core.Network
        The fitted network's layer sizes, activation and output.
    thetas_ : list of ndarray, shapes (s_{l+1}, s_l + 1)
        The course's weight matrices, bias in column 0.
    coefs_ : list of ndarray, shapes (s_l, s_{l+1})
        scikit-learn's layout of the same weights: ``thetas_[l][:, 1:].T`` (views).
    intercepts_ : list of ndarray, shapes (s_{l+1},)
        ``thetas_[l][:, 0]`` (views).
    n_iter_ : int
        Iterations (epochs for mini-batch optimisers) run, over all ``partial_fit`` calls.
    loss_curve_ : list of float
        The cost after each iteration, for every optimiser; for mini-batch optimisers the
        epoch's mean batch cost (see :mod:`nnlearn.optim._minibatch`).
    validation_scores_ : list of float or None
        Validation accuracy per iteration (epoch) with early stopping, else None.
    best_validation_score_ : float or None
        The best of them: its iteration's weights are the fitted ones.
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
    calibrated probabilities matter.

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

    def __init__(
        self,
        hidden_layer_sizes=DEFAULTS.hidden_layer_sizes,
        lam=DEFAULTS.lam,
        optimizer=ESTIMATOR_OPTIMIZER,
        max_iter=DEFAULTS.max_iter,
        tol=DEFAULTS.tol,
        activation=DEFAULTS.activation,
        output=DEFAULTS.output,
        epsilon_init=DEFAULTS.epsilon_init,
        batch_size=DEFAULTS.minibatch.batch_size,
        learning_rate=DEFAULTS.minibatch.learning_rate,
        early_stopping=DEFAULTS.early_stopping,
        validation_fraction=DEFAULTS.validation_fraction,
        n_iter_no_change=DEFAULTS.n_iter_no_change,
        augment=DEFAULTS.augment,
        warm_start=False,
        dtype=DEFAULTS.dtype,
        random_state=DEFAULTS.seed,
        verbose=False,
        cluster=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lam = lam
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.tol = tol
        self.activation = activation
        self.output = output
        self.epsilon_init = epsilon_init
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.augment = augment
        self.warm_start = warm_start
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.cluster = cluster

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
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=True)
        classes = self._check_classes(np.unique(y))
        warm = self.warm_start and hasattr(self, "thetas_")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start needs the classes of the previous fit, {self.classes_.tolist()}; "
                f"y has {classes.tolist()}: set warm_start=False to start afresh"
            )
        self.classes_ = classes
        result = self._fit(X, y, options, sample_weight, initial_thetas=self.thetas_ if warm else None)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = list(result.history)
        scores = getattr(result, "validation_scores", None) if options.early_stopping else None
        self.validation_scores_ = scores or None
        self.best_validation_score_ = max(scores) if scores else None
        self._optimizer_state = (self.optimizer, getattr(result, "state", None))
        self._rng = None
        if result.reason == "max_iter":
            warnings.warn(
                f"{self.optimizer} stopped at max_iter={self.max_iter} iterations before converging "
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
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=first)
        if classes is not None:
            classes = np.unique(classes)
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()} differ from the first call's {self.classes_.tolist()}")
        if first:
            self.classes_ = self._check_classes(classes)
            self.n_iter_, self.loss_curve_ = 0, []
            self.validation_scores_ = self.best_validation_score_ = None
        if getattr(self, "_rng", None) is None:
            self._rng = np.random.default_rng(self._seed())
        kind, state = getattr(self, "_optimizer_state", (None, None))
        # partial_fit is one epoch on the data given; like scikit-learn's, it never holds
        # data out nor stops early.
        options = replace(
            options, max_iter=1, early_stopping=False, minibatch=replace(options.minibatch, early_stopping=False)
        )
        result = self._fit(
            X,
            y,
            options,
            sample_weight,
            initial_thetas=None if first else self.thetas_,
            shuffle=self._rng,
            state=state if kind == self.optimizer else None,
        )
        self.n_iter_ += result.n_iter
        self.loss_curve_ = [*self.loss_curve_, *result.history]
        self._optimizer_state = (self.optimizer, result.state)
        return self

    def _options(self):
        """The estimator's parameters as checked :class:`~nnlearn.training._settings.Options`."""
        if self.cluster is not None:
            check_cluster_parameter(self.cluster, self.optimizer)
        minibatch = MiniBatch(batch_size=self.batch_size, learning_rate=self.learning_rate)
        return Options(
            hidden_layer_sizes=self.hidden_layer_sizes,
            activation=self.activation,
            output=self.output,
            lam=self.lam,
            optimizer=self.optimizer,
            max_iter=self.max_iter,
            tol=self.tol,
            seed=self._seed(),
            dtype=self.dtype,
            epsilon_init=self.epsilon_init,
            minibatch=minibatch,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            augment=self.augment,
        ).checked()

    def _validate(self, X, y, sample_weight, reset):
        X, y = validate_data(self, X, y, dtype=np.dtype(self.dtype), reset=reset)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        return X, y, sample_weight

    @staticmethod
    def _check_classes(classes):
        if classes.size < 2:
            raise ValueError(
                f"NeuralNetClassifier needs at least two classes to fit; y has one class, {classes.tolist()}"
            )
        return classes

    def _seed(self):
        """An int seed: ``random_state`` itself when it is one, so that the estimator and
        :func:`nnlearn.train` with that seed start from the same weights."""
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _fit(self, X, y, options, sample_weight, **kwargs):
        with data_terms(self.cluster) as data_term:
            fitted = fit(
                X,
                y,
                options,
                classes=self.classes_,
                sample_weight=sample_weight,
                callback=self._progress(),
                data_term=data_term,
                local=self.cluster is None,
                **kwargs,
            )
        self.thetas_, self.network_ = fitted.model.thetas, fitted.model.network
        return fitted.result

    def _progress(self):
        """The ``verbose`` callback: the one place nnlearn's library code prints."""
        if not self.verbose:
            return None

        def report(iteration, J, x):
            print(f"Iteration {iteration}, cost = {J:.8f}")

        return report

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
        history = {"cost": list(self.loss_curve_), "optimizer": self.optimizer, "n_iter": int(self.n_iter_)}
        return Model(self.thetas_, self.classes_, float(self.lam), history, network=self.network_)

    def _checked_X(self, X):
        check_is_fitted(self)
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
