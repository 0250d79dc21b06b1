"""The planner: the fastest forms of the kernel's products, measured on the machine at hand.

As FFTW plans its transforms: the fast kernel's products can be written several ways
(:mod:`nnlearn.core.forms`), and which is fastest depends on the BLAS library and its
kernel. The first time a run needs a plan for a given network, dtype, rows per shard,
BLAS and thread count, :func:`plan_for` times the candidates on up to a few thousand rows
of the real examples, keeps the fastest and caches the plan on disk (``plans/`` in the
user cache directory, or ``$NNLEARN_PLAN_CACHE``), so later runs start planned.

* ``NNLEARN_PLAN=off`` gives the fixed forms (:meth:`Plan.fixed`) everywhere.
* Choices are stable run to run: candidates are timed in interleaved rounds and ranked
  by their fastest call, and the first candidate in a fixed order (the fixed forms first)
  within :data:`MARGIN` of the fastest is kept, so near-ties keep the fixed forms.
* Small problems are not planned: below :data:`MIN_PLAN_WORK` a call takes well under a
  millisecond and the forms differ by microseconds. Networks too wide to time
  :data:`CHOOSE_ROUNDS` rounds of every form within the budget keep the fixed forms: their
  calls are bound by products whose forms differ by less than the timings' noise.
* A plan measured while the machine is busy (a load average above its processors) serves
  its run but is not cached: other processes' work skews the timings, the shard count's
  most, and a quieter run measures again.
* A plan changes results only in their last bits; it is recorded with a model and its
  checkpoints, reused on resume and sent to a cluster's workers (:func:`resolve_plan`).

The measurements behind the candidates and the figures of planning are in
``docs/planner.md``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cache_dir
from .core import Network, NetworkLike, Plan, data_term, init_random
from .core.forms import GRADIENT_FORMS, HIDDEN_ORDERS
from .errors import ParameterError
from .files import atomic_write, open_regular
from .threads import MIN_SHARD_WORK, blas_threads, default_threads, handoff_seconds, shard_count

__all__ = [
    "MARGIN",
    "BUDGET",
    "MIN_PLAN_WORK",
    "Planning",
    "PlanCacheWarning",
    "candidates",
    "measure",
    "plan_cache_dir",
    "plan_for",
    "plan_key",
    "planning_enabled",
    "resolve_plan",
]

#: Seconds of timing in all, kernel forms and shard counts together.
BUDGET = 0.3
#: A candidate replaces an earlier one only if it is faster by more than this fraction;
#: one shard replaces one per thread only if faster by more than SHARD_MARGIN.
MARGIN, SHARD_MARGIN = 0.08, 0.10
#: Candidates slower than this many times the fastest are timed no more.
DROP = 1.25
#: Rows timed: at most ROWS, and fewer for wide networks so that a call stays near
#: CALL_WORK examples times weights; at least MIN_ROWS, so that the gradients' products,
#: whose inner dimension is the rows, keep the regime of a real shard's.
ROWS, MIN_ROWS, CALL_WORK = 4096, 512, 15_000_000
#: Examples times weights per shard above which one shard per thread is kept unmeasured:
#: a thread's hand-off (about 0.15 ms, docs/benchmarks.md) is lost in calls this long.
SHARD_RACE_WORK = 30 * MIN_SHARD_WORK
#: Examples times weights per shard below which the fixed forms are used unmeasured.
MIN_PLAN_WORK = 3_000_000
#: The hidden widths' padding tried (each where it changes a width).
PADS = (8, 16)
#: Rounds of timing the kernel forms needed to choose one (with fewer in the budget, the
#: network is too wide to plan in it: the fixed forms are kept, and its calls are bound by
#: products whose forms differ by less than the noise); and the most rounds.
CHOOSE_ROUNDS, MAX_ROUNDS = 5, 60
#: Bumped when the candidates change, so that older cached plans are measured again.
PLANNER_VERSION = 1
_MAX_FILE_BYTES = 1 << 16
_clock = time.perf_counter  # the planner's clock (the tests give it a fake one)


class PlanCacheWarning(UserWarning):
    """A cached plan could not be read or kept; the plan is measured (or used) all the same."""


class _Unreadable(Exception):
    pass


def planning_enabled() -> bool:
    """False when ``NNLEARN_PLAN`` says ``off``; ParameterError for a value it cannot mean."""
    value = os.environ.get("NNLEARN_PLAN", "on").strip().lower()
    if value not in ("on", "off", ""):
        raise ParameterError(f"NNLEARN_PLAN must be 'on' or 'off', got {os.environ['NNLEARN_PLAN']!r}")
    return value != "off"


def plan_cache_dir() -> Path:
    """Where plans are kept: ``$NNLEARN_PLAN_CACHE``, or ``plans`` in nnlearn's cache directory."""
    return Path(os.environ.get("NNLEARN_PLAN_CACHE") or cache_dir() / "plans")


@functools.cache
def _blas() -> tuple[tuple[str, str, str], ...]:
    """NumPy's BLAS as (library, version, kernel); every BLAS loaded where NumPy's cannot be told."""
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    numpys = [pool for pool in pools if "numpy" in str(pool.get("filepath", ""))]
    return tuple(
        sorted({(p["internal_api"], str(p.get("version")), str(p.get("architecture"))) for p in numpys or pools})
    )


def _rows_bucket(rows: int) -> int:
    """Rows per shard as the key counts them: a power of two at or below, at most ROWS."""
    return min(ROWS, 1 << (max(rows, 1).bit_length() - 1))


def plan_key(network: Network, dtype: Any, rows: int, threads: int, sharded: bool = True) -> dict[str, Any]:
    """What a plan depends on: the network, dtype, rows per shard (bucketed), BLAS, threads."""
    return {
        "planner": PLANNER_VERSION,
        "layers": list(network.layer_sizes),
        "activation": network.activation,
        "output": network.output,
        "dtype": np.dtype(dtype).name,
        "rows": _rows_bucket(rows),
        "threads": int(threads),
        "sharded": bool(sharded),
        "blas": [list(pool) for pool in _blas()],
    }


def candidates(network: Network, dtype: Any) -> list[Plan]:
    """The kernel forms to time, the fixed forms first and then in a fixed order.

    Paddings that leave every hidden width as it is are left out.
    """
    fixed = Plan.fixed(dtype)
    hidden = network.layer_sizes[1:-1]
    pads = [1] + [p for p in PADS if any(s % p for s in hidden)]
    widths_seen, pads_kept = set(), []
    for pad in pads:
        widths = tuple(-(-s // pad) * pad for s in hidden)
        if widths not in widths_seen:
            widths_seen.add(widths)
            pads_kept.append(pad)
    plans = [Plan(order, gradient, pad) for pad in pads_kept for order in HIDDEN_ORDERS for gradient in GRADIENT_FORMS]
    return [fixed] + [plan for plan in plans if plan != fixed]


def _race(calls: Mapping[Any, Callable[[], object]], budget: float, least: int) -> tuple[dict[Any, float], int]:
    """The fastest of each call's timings, timed in interleaved rounds for about ``budget`` seconds.

    Every round times each call once, starting one further along each round, so that
    no call always follows the same one. Rounds go on until ``least`` rounds are done and
    the budget is spent (at most MAX_ROUNDS); when the first round shows that ``least``
    rounds would take over 1.5 times the budget, it stops there (the caller then has too
    few to choose by), so that no race takes much over its budget. From the second round
    on, calls slower than DROP times the fastest are dropped, so that the rounds left go
    to the close ones. The first round's calls allocate and fault in pages: it counts
    only through the minimum.
    """
    start = _clock()
    names = list(calls)
    best = dict.fromkeys(names, float("inf"))
    rounds = 0
    while rounds < MAX_ROUNDS:
        for index in range(len(names)):
            name = names[(index + rounds) % len(names)]
            began = _clock()
            calls[name]()
            best[name] = min(best[name], _clock() - began)
        rounds += 1
        elapsed = _clock() - start
        if (rounds == 1 and elapsed * least > 1.5 * budget) or (rounds >= least and elapsed >= budget):
            break
        if rounds >= 2:
            fastest = min(best.values())
            names = [name for name in names if best[name] <= DROP * fastest]
    return best, rounds


def _choose(order: list[Any], best: Mapping[Any, float], margin: float = MARGIN) -> Any:
    """The first in ``order`` within ``margin`` of the fastest."""
    fastest = min(best.values())
    return next(name for name in order if best[name] <= fastest * (1 + margin))


@dataclass(frozen=True)
class Planning:
    """What :func:`measure` found: the plan, every candidate's fastest call (ms) and the cost."""

    plan: Plan
    timings_ms: dict[str, float]
    rounds: int
    seconds: float
    rows: int


def _examples(X: Any, network: Network, rows: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first ``rows`` examples of X (any array NumPy can read) and made-up one-hot targets."""
    sample = np.ascontiguousarray(np.asarray(X[:rows]), dtype=dtype)
    K = network.layer_sizes[-1]
    return sample, np.eye(K, dtype=dtype)[np.arange(sample.shape[0]) % K]


def measure(X: Any, network: NetworkLike, threads: int | None = None, *, sharded: bool = True) -> Planning:
    """Time the candidates on X's first rows and return the fastest plan, with the figures.

    ``sharded``: also choose between one shard and one per thread (for
    :class:`~nnlearn.threads.ShardedDataTerm`; a cluster's partitions are its own).
    """
    start = time.perf_counter()
    network = Network.of(network)
    dtype = np.dtype(X.dtype)
    threads = default_threads() if threads is None else int(threads)
    count = shard_count(X.shape[0], network, threads)
    rows = min(_rows_bucket(-(-X.shape[0] // count)), max(MIN_ROWS, CALL_WORK // network.n_weights))
    thetas = [theta.astype(dtype) for theta in init_random(network, rng=0)]
    sample, targets = _examples(X, network, rows * count, dtype)
    forms = candidates(network, dtype)
    race_shards = sharded and count > 1 and -(-X.shape[0] // count) * network.n_weights < SHARD_RACE_WORK
    shard_budget = BUDGET / 4 if race_shards else 0.0
    with blas_threads(1):
        calls = {
            plan: functools.partial(data_term, thetas, sample[:rows], targets[:rows], network=network, plan=plan)
            for plan in forms
        }
        best, rounds = _race(calls, BUDGET - shard_budget, CHOOSE_ROUNDS)
    plan = _choose(forms, best) if rounds >= CHOOSE_ROUNDS else forms[0]
    timings = {form.describe(): seconds * 1e3 for form, seconds in best.items()}
    if shard_budget:
        plan, shard_timings = _shards(plan, best[plan], count, thetas, sample, targets, network, shard_budget)
        timings.update(shard_timings)
    return Planning(plan, timings, rounds, time.perf_counter() - start, rows)


def _shards(plan, shard_seconds, count, thetas, sample, targets, network, budget):
    """``plan`` with one shard, if one shard of all ``sample``'s rows beats ``count`` shards.

    ``count`` shards take a shard's time (``shard_seconds``) plus the hand-off to the
    threads; one shard takes its own, timed here on one thread. Timing the shards side by
    side instead would measure the other processes of a busy machine more than the
    shards: one core taken by another process halves their speed for the while.
    """
    whole = Plan(plan.hidden_order, plan.gradient, plan.pad, 1)
    with blas_threads(1):
        call = functools.partial(data_term, thetas, sample, targets, network=network, plan=plan)
        whole_seconds = _race({whole: call}, budget, 3)[0][whole]
    handoff = handoff_seconds(count)
    timings = {
        f"{whole.describe()} on {sample.shape[0]} rows": whole_seconds * 1e3,
        f"hand-off to {count} threads": handoff * 1e3,
    }
    return (whole if whole_seconds * (1 + SHARD_MARGIN) < shard_seconds + handoff else plan), timings


def _busy() -> bool:
    """Whether other work is running: the last minute's load average above the processors we may use."""
    if not hasattr(os, "getloadavg"):
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return os.getloadavg()[0] > cpus


def _cache_path(key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return plan_cache_dir() / f"plan-{digest}.json"


def _read_cached(path: Path, key: Mapping[str, Any]) -> Plan | None:
    """The plan cached at ``path`` for ``key``; None when there is none; a warning when unreadable."""
    if not os.path.lexists(path):
        return None
    try:
        with open_regular(path, _Unreadable, "plan file", _MAX_FILE_BYTES) as stream:
            record = json.loads(stream.read().decode("utf-8"))
        if not isinstance(record, dict) or record.get("key") != key:
            raise _Unreadable("it holds the plan of another machine or network")
        return Plan.from_dict(record.get("plan"))
    except (_Unreadable, OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.warn(
            f"ignoring the plan cache file {path} ({str(exc).splitlines()[0] or type(exc).__name__}); measuring again",
            PlanCacheWarning,
            stacklevel=3,
        )
        return None


def _keep(path: Path, key: Mapping[str, Any], planning: Planning) -> None:
    record = {
        "key": key,
        "plan": planning.plan.to_dict(),
        "timings_ms": planning.timings_ms,
        "rounds": planning.rounds,
        "rows": planning.rows,
        "seconds": planning.seconds,
        "made": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    data = json.dumps(record, indent=1).encode()
    try:
        atomic_write(path, lambda stream: stream.write(data), overwrite=True)
    except (OSError, ValueError) as exc:  # a read-only cache, or a directory in the file's place
        warnings.warn(
            f"could not keep the plan in {path} ({str(exc).splitlines()[0]}); it serves this run only",
            PlanCacheWarning,
            stacklevel=3,
        )


def plan_for(X: Any, network: NetworkLike, threads: int | None = None, *, sharded: bool = True) -> Plan:
    """The plan for evaluating ``network`` on ``X`` with ``threads`` threads: cached, or measured and cached.

    The fixed forms when ``NNLEARN_PLAN=off`` or when the problem is too small to plan
    (:data:`MIN_PLAN_WORK`). ``X`` is any array whose first rows NumPy can read (a Dask
    array's are computed). A plan measured on a busy machine is not cached.
    """
    network = Network.of(network)
    dtype = np.dtype(X.dtype)
    threads = default_threads() if threads is None else int(threads)
    rows = -(-X.shape[0] // shard_count(X.shape[0], network, threads))
    if not planning_enabled() or rows * network.n_weights < MIN_PLAN_WORK:
        return Plan.fixed(dtype)
    key = plan_key(network, dtype, rows, threads, sharded)
    path = _cache_path(key)
    cached = _read_cached(path, key)
    if cached is not None:
        return cached
    planning = measure(X, network, threads, sharded=sharded)
    if not _busy():
        _keep(path, key, planning)
    return planning.plan


def resolve_plan(
    plan: Any,
    X: Any,
    network: NetworkLike,
    threads: int | None = None,
    *,
    resume: Mapping[str, Any] | None = None,
    sharded: bool = True,
) -> Plan:
    """The plan a run uses, from what the caller gave: the hook for ``train``'s ``plan=``.

    Parameters
    ----------
    plan : "auto", "off", None, Plan or dict
        "auto": :func:`plan_for` (cached or measured; fixed under ``NNLEARN_PLAN=off``);
        "off" or None: the fixed forms; a :class:`~nnlearn.core.Plan` or its
        :meth:`~nnlearn.core.Plan.to_dict` record: that plan.
    X, network, threads
        The examples, the network and the threads of the run.
    resume : dict, optional
        A checkpoint's state being resumed: the plan it records (its ``"plan"``), or the
        fixed forms for a checkpoint from before plans, so that the resumed run computes
        what the interrupted one did. It overrides ``plan``.
    sharded : bool
        False for a cluster's data term (the plan's shard count is not chosen).

    Raises
    ------
    ParameterError
        In one line, for a ``plan`` that is none of these, or a record that is not a plan.
    """
    if resume is not None:
        plan = resume.get("plan") or "off"
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, dict):
        try:
            return Plan.from_dict(plan)
        except (TypeError, ValueError) as exc:
            raise ParameterError(str(exc)) from None
    if plan is None or (isinstance(plan, str) and plan == "off"):
        return Plan.fixed(X.dtype)
    if isinstance(plan, str) and plan == "auto":
        return plan_for(X, network, threads, sharded=sharded)
    raise ParameterError(f"plan must be 'auto', 'off', a Plan or a plan's record, got {plan!r}")
