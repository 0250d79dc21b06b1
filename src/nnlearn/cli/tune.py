"""``nnlearn tune``: choose lambda, hidden layers, activation and output by cross-validation.

The data are split as ``nnlearn train`` splits them (``--test-size``, ``--seed``); the
search (:func:`nnlearn.reporting._tuning.search`) sees the training part alone, in stratified folds.
The chosen settings are then trained on the whole training part exactly as the printed
``nnlearn train`` command trains them (the same call, split and seed: the same weights),
scored once on the held-out part, and saved with the validation curve of the search.
``--check K`` adds nested cross-validation (:func:`nnlearn.reporting._tuning.nested_check`): is the
choice better than the course's settings on folds it was not chosen on?

Every input is checked before any work (:func:`nnlearn.cli._tune_options.check_data`
checks the data as ``nnlearn train`` does). Ctrl-C, SIGTERM and SIGHUP stop the work, end
the worker processes of the search and say how far it came (:class:`_StopSignals`).

This module runs the verb; its options' checks are :mod:`nnlearn.cli._tune_options`', what
it prints :mod:`nnlearn.cli._tune_output`'s.
"""

from __future__ import annotations

import _thread
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..datasets._builtin import DATASET_FRAMING, DATASETS, load_data
from ..errors import ParameterError
from ..training._settings import DEFAULTS, SETTINGS
from ._common import (
    DATA_HELP,
    emit,
    note_saved,
    percent,
    refuse_existing,
    refuse_overwriting_inputs,
    same_path,
    split_data,
    writing,
)
from ._monitor import STOP_SIGNALS, say
from ._train_options import add_setting
from ._tune_options import DEFAULT_OUT, DEFAULT_PLOT, check_options
from ._tune_output import make_payload, payload_text

ESTIMATOR_OPTIMIZER = SETTINGS["optimizer"].estimator_default

SUMMARY = "choose lambda, hidden layers, activation and output by cross-validation, and train the best"
EXAMPLES = """\
  nnlearn tune --data digits8
  nnlearn tune --data digits8 --lambda 0.3,1,3 --hidden 25,100,50-25 --activation relu --output softmax
  nnlearn tune --data digits8 --check 3 --json
  nnlearn tune --lambda 1,3 --hidden 100 --cv 3 --max-iter 200 --out tuned.npz --plot tuned.png"""


def add_arguments(p):
    from ..core import ACTIVATIONS, OUTPUTS
    from ..reporting._tuning_grid import DEFAULT_GRID

    grid = DEFAULT_GRID
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument(
        "--lambda",
        dest="lam",
        metavar="L,L,...",
        help=f"values of lambda to try (default: {','.join(f'{v:g}' for v in grid['lam'])})",
    )
    p.add_argument(
        "--hidden",
        metavar="H,H,...",
        help="hidden layers to try, each its layer sizes joined by '-' (50-25: two layers) (default: "
        + ",".join("-".join(map(str, h)) for h in grid["hidden_layer_sizes"])
        + ")",
    )
    p.add_argument(
        "--activation",
        metavar="A,A,...",
        help=f"hidden activations to try, of {', '.join(ACTIVATIONS)} (default: {','.join(grid['activation'])})",
    )
    p.add_argument(
        "--output",
        metavar="O,O,...",
        help=f"output layers to try, of {', '.join(OUTPUTS)} (default: {','.join(grid['output'])})",
    )
    add_setting(p, "optimizer", ESTIMATOR_OPTIMIZER, help="how every candidate trains")
    add_setting(p, "max_iter", DEFAULTS.max_iter, help="iterations of each fit")
    p.add_argument("--cv", type=int, default=5, metavar="K", help="stratified cross-validation folds (default: 5)")
    p.add_argument(
        "--check",
        type=int,
        nargs="?",
        const=3,
        default=None,
        metavar="K",
        help="also run nested cross-validation on K outer folds (default K: 3): the search chooses on the other "
        "folds, and its choice and the course's settings are scored on each outer fold (K times the work)",
    )
    p.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        metavar="F",
        help="held-out fraction, split as nnlearn train splits it; the search never sees it (default: 0.2)",
    )
    add_setting(p, "seed", DEFAULTS.seed, help="seeds the split, the folds and every fit")
    add_setting(p, "dtype", DEFAULTS.dtype)
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes, each given cores/N BLAS threads (default: this machine's cores)",
    )
    p.add_argument("--out", metavar="FILE", help=f"the chosen model's file (default: {DEFAULT_OUT})")
    p.add_argument("--plot", metavar="FILE", help=f"the validation-curve picture (default: {DEFAULT_PLOT})")
    p.add_argument("--force", action="store_true", help="overwrite an existing model file or picture")
    p.add_argument("--quiet", action="store_true", help="no line per candidate on stderr")


def run(args):
    os.environ.setdefault("MPLBACKEND", "Agg")  # the picture goes to a file, never a window
    done = {"candidates": 0, "of": 0, "saved": []}
    with _StopSignals() as stop:
        try:
            status = _checked_tune(args, stop, done)
            stop.finished()
        except BaseException:
            if stop.name is None:  # an error, not a stop signal: main() reports it
                raise
            # The fits abort with the exception; their worker processes must end with this one.
            _stop_workers(kill=True)
            where = f" after {done['candidates']} of {done['of']} candidates" if done["of"] else ""
            saved = f"saved {' and '.join(map(str, done['saved']))}" if done["saved"] else "nothing was saved"
            by = "" if stop.name == "SIGINT" else f" by {stop.name}"
            say(f"nnlearn tune: interrupted{by}{where}; {saved}")
            return STOP_SIGNALS[stop.name]
        # Here, where a stop signal cannot cut it short (the results are out): otherwise
        # Python's exit would wait for the idle workers, and a Ctrl-C then would print a
        # traceback.
        _stop_workers(kill=False)
        return status


def _checked_tune(args, stop, done):
    """Every input checked, then the work."""
    from ._tune_options import check_data

    grid = check_options(args)
    done["of"] = math.prod(len(values) for values in grid.values())
    X, y = load_data(args.data)
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    check_data(args, grid, X_train, y_train)
    out, plot = args.out or DEFAULT_OUT, args.plot or DEFAULT_PLOT
    refuse_overwriting_inputs([("--data", args.data)], [("--out", out), ("--plot", plot)])
    refuse_existing(out, args.force)
    refuse_existing(plot, args.force, option="--plot")
    if same_path(out, plot):
        raise ParameterError(f"--out {out} and --plot {plot} are the same file; give two names")
    return _tune(args, grid, (X_train, y_train, X_test, y_test), out, plot, done, stop)


class _Stopped(KeyboardInterrupt):
    """Raised in the main thread by the first stop signal (a KeyboardInterrupt, which
    joblib answers by aborting the fits under way)."""


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP while tune runs.

    The first raises :class:`_Stopped` in the main thread (``name`` says which it was);
    later ones are only noted, so that they cannot cut the cleanup short. It is not raised
    where it would leave something half done, but asked for again 50 ms later: while loky
    starts its worker processes (a worker whose start was cut short would print a
    traceback of its own, and one not yet known to the pool could not be ended with it),
    and while a finaliser runs (a weakref callback of the pool's, where Python would only
    print it as an ignored exception). Once stopping, the pool's own threads may fail as
    the pool is torn down under them (loky's manager thread can look for a task the abort
    has just cancelled): that is the stop, already reported, so their tracebacks are kept
    quiet. Signal handlers can only be set from the main thread; elsewhere tune cannot be
    stopped by a signal.
    """

    def __init__(self):
        self.name = None
        self._raised = False
        self._previous = {}
        self._hooks = (sys.unraisablehook, threading.excepthook)
        self._again = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                number = getattr(signal, name, None)  # no SIGHUP on Windows
                # A signal ignored when nnlearn started stays ignored (`nohup nnlearn tune`).
                if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                    self._previous[number] = signal.signal(number, self._on_signal)
        self._hooks = (sys.unraisablehook, threading.excepthook)
        sys.unraisablehook, threading.excepthook = self._unraisable, self._thread_failed
        return self

    def __exit__(self, *exc_info):
        if self._again is not None:
            self._again.cancel()
        sys.unraisablehook, threading.excepthook = self._hooks
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False

    def _on_signal(self, signum, frame):
        if self.name is None:
            self.name = signal.Signals(signum).name
        if self._raised:
            return
        if _starting_workers(frame):
            self._ask_again()
            return
        self._raised = True
        raise _Stopped

    def _ask_again(self):
        """Call the handler again in 50 ms (as if the signal came again, to this process alone)."""
        self._again = threading.Timer(0.05, _thread.interrupt_main, (getattr(signal, self.name),))
        self._again.daemon = True
        self._again.start()

    def _unraisable(self, unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._hooks[0](unraisable)
        elif self.name is not None:  # raised in a finaliser, and lost there
            self._raised = False
            self._ask_again()

    def _thread_failed(self, failure):
        if self.name is None:
            self._hooks[1](failure)

    def finished(self):
        """The work is done and its results are out: a stop signal from now on is only noted."""
        self._raised = True

    def check(self):
        """Raise :class:`_Stopped` if a stop signal came and was not raised."""
        if self.name is not None:
            self._raised = True
            raise _Stopped


def _starting_workers(frame):
    """Whether ``frame`` (the main thread's, where a signal came) is within loky's start
    of the pool's worker processes."""
    while frame is not None:
        if frame.f_code.co_name == "_ensure_executor_running" and "loky" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _stop_workers(kill):
    """End joblib's worker processes (loky's reusable executor): at once with ``kill``,
    else once idle. Their resource trackers end when the last process holding their pipe
    (this one) exits."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # None: no pool was started
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=kill)


def _tune(args, grid, data, out, plot, done, stop):
    from ..reporting._plots import save_figure
    from ..reporting._tuning import SearchSettings, nested_check, search
    from ..reporting._tuning_plot import plot_search

    X_train, y_train, X_test, y_test = data
    show = not (args.quiet or args.json)
    settings = SearchSettings(
        optimizer=args.optimizer, max_iter=args.max_iter, seed=args.seed, dtype=args.dtype, n_jobs=args.n_jobs
    )
    start = time.perf_counter()

    def progress(i, total, candidate):
        done.update(candidates=done["candidates"] + 1, of=total)
        if show:
            say(
                f"nnlearn tune: [{i:>{len(str(total))}}/{total}] {candidate.describe():<36} "
                f"{percent(candidate.mean):>7} +- {percent(candidate.std)}  ({candidate.fit_seconds:.2f} s a fit)"
            )
        stop.check()

    def check_progress(*fold):
        if show:
            _check_progress(*fold)
        stop.check()

    result = search(X_train, y_train, grid, cv=args.cv, settings=settings, progress=progress)
    check = None
    if args.check:
        if show:
            say(f"nnlearn tune: check: the search again inside each of {args.check} outer folds")
        check = nested_check(
            X_train,
            y_train,
            grid,
            outer=args.check,
            cv=args.cv,
            settings=settings,
            progress=check_progress,
        )
    model = _retrain(args, result.best.params, X_train, y_train)
    test_accuracy = None if X_test is None else float(model.score(X_test, y_test))
    stop.check()
    with writing(out):
        saved = model.save(out, overwrite=args.force)
    done["saved"].append(saved)
    note_saved(args, "the model", saved)
    with writing(plot):
        figure = save_figure(plot_search(result), plot, overwrite=args.force)
    done["saved"].append(figure)
    note_saved(args, "the validation curve", figure)
    payload = make_payload(args, result, check, data, test_accuracy, saved, figure, time.perf_counter() - start)
    emit(args, payload, payload_text(payload))
    return 0


def _check_progress(k, outer, chosen, chosen_score, course_score):
    from ..reporting._tuning import architecture_of

    say(
        f"nnlearn tune: check fold {k}/{outer}: chose lambda {chosen['lam']:g}, {architecture_of(chosen)}: "
        f"{percent(chosen_score)}; course's settings {percent(course_score)}"
    )


def _retrain(args, params, X_train, y_train):
    """The chosen settings trained as ``nnlearn train`` trains them (the command printed)."""
    from ..training._train import train

    model = train(
        X_train,
        y_train,
        hidden_layer_sizes=params["hidden_layer_sizes"],
        lam=params["lam"],
        optimizer=args.optimizer,
        max_iter=args.max_iter,
        seed=args.seed,
        dtype=args.dtype,
        activation=params["activation"],
        output=params["output"],
    )
    data = args.data if args.data in DATASETS else str(Path(args.data).resolve())
    model.history.update(
        data=data,
        test_size=args.test_size,
        split_seed=args.seed,
        framing=DATASET_FRAMING.get(args.data, "mnist"),
        source="nnlearn tune",
    )
    return model
