"""The planner: every form of the kernel equals the reference, and plans are chosen, cached and reused."""

import itertools
import json
import os
import warnings

import numpy as np
import pytest

from nnlearn import planner
from nnlearn.core import ACTIVATIONS, OUTPUTS, Network, Plan, data_term, from_sums, init_random, one_hot, pack
from nnlearn.core import backprop as reference
from nnlearn.core.forms import GRADIENT_FORMS, HIDDEN_ORDERS
from nnlearn.errors import ParameterError
from nnlearn.threads import ShardedDataTerm

KINDS = list(itertools.product(ACTIVATIONS, OUTPUTS))
FORMS = [Plan(order, gradient, pad) for order in HIDDEN_ORDERS for gradient in GRADIENT_FORMS for pad in (1, 8, 16)]
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test plans into a directory of its own, with planning on, on a machine taken as quiet."""
    monkeypatch.setenv("NNLEARN_PLAN_CACHE", str(tmp_path / "plans"))
    monkeypatch.delenv("NNLEARN_PLAN", raising=False)
    monkeypatch.setattr(planner, "_busy", lambda: False)
    return tmp_path / "plans"


def problem(rng, network, m=60, dtype=np.float64):
    X = rng.standard_normal((m, network.layer_sizes[0])).astype(dtype)
    Y = one_hot(np.arange(m) % network.layer_sizes[-1])[1].astype(dtype)
    thetas = init_random(network, epsilon=0.5, rng=rng, dtype=dtype)
    return thetas, X, Y


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("hidden", [(9,), (9, 6), (7, 10, 5)], ids=["1", "2", "3"])
@pytest.mark.parametrize("kind", KINDS, ids="/".join)
def test_every_form_equals_the_reference_backpropagation(rng, kind, hidden, weighted):
    # hidden widths of 5-10 units: every padding (to 8 and to 16) changes some of them
    network = Network((11, *hidden, 4), *kind)
    for dtype in (np.float64, np.float32):
        thetas, X, Y = problem(rng, network, dtype=dtype)
        w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype) if weighted else None
        M = X.shape[0] if w is None else float(np.sum(w))
        as64 = [t.astype(np.float64) for t in thetas]
        J_ref, grads_ref = reference.cost_and_gradient(
            as64, X.astype(np.float64), Y.astype(np.float64), 1.0, None if w is None else w.astype(np.float64),
            network=network,
        )  # fmt: skip
        tolerance = TOLERANCE[dtype]
        for plan in FORMS:
            J, grads = from_sums(*data_term(thetas, X, Y, w, network=network, plan=plan), thetas, 1.0, M)
            assert J == pytest.approx(J_ref, rel=tolerance), plan
            assert [g.shape for g in grads] == [t.shape for t in thetas] and all(g.dtype == dtype for g in grads)
            scale = np.abs(pack(grads_ref)).max()
            np.testing.assert_allclose(pack(grads), pack(grads_ref), rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fixed_plan_is_bit_for_bit_no_plan(rng, dtype):
    for kind in KINDS:
        network = Network((11, 9, 6, 4), *kind)
        thetas, X, Y = problem(rng, network, dtype=dtype)
        w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype)
        for weights in (None, w):
            loss, grads = data_term(thetas, X, Y, weights, network=network)
            loss_fixed, grads_fixed = data_term(thetas, X, Y, weights, network=network, plan=Plan.fixed(dtype))
            assert loss == loss_fixed and all(np.array_equal(a, b) for a, b in zip(grads, grads_fixed))


def test_the_forms_take_their_own_paths(rng):
    # the plans must not all fall back to one path: some differ from the fixed one in the last bits
    network = Network((40, 25, 10))
    thetas, X, Y = problem(rng, network, m=300)
    fixed = pack(data_term(thetas, X, Y, network=network)[1])
    differing = [plan for plan in FORMS if not np.array_equal(pack(data_term(thetas, X, Y, plan=plan)[1]), fixed)]
    assert {plan.hidden_order for plan in differing} == {"C", "F"} and {plan.pad for plan in differing} >= {8, 16}


def test_a_plan_round_trips_through_json_and_refuses_anything_else():
    plan = Plan("C", GRADIENT_FORMS[1], 8, 2)
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert Plan.fixed("float64") == Plan("F", GRADIENT_FORMS[0], 1, None)
    assert Plan.fixed("float32").hidden_order == "C"
    bad = [
        ({**plan.to_dict(), "hidden_order": "K"}, "hidden_order"),
        ({**plan.to_dict(), "gradient": "a delta"}, "gradient"),
        ({**plan.to_dict(), "pad": 0}, "pad"),
        ({**plan.to_dict(), "pad": True}, "pad"),
        ({**plan.to_dict(), "shards": -1}, "shards"),
        ({**plan.to_dict(), "extra": 1}, "fields"),
        ({"pad": 1}, "fields"),
        ([1, 2], "fields"),
    ]
    for record, word in bad:
        with pytest.raises(ValueError, match=word) as caught:
            Plan.from_dict(record)
        assert "\n" not in str(caught.value)


def test_the_candidates_start_with_the_fixed_forms_and_pad_only_where_widths_change():
    course = planner.candidates(Network((400, 25, 10)), "float64")
    assert course[0] == Plan.fixed("float64") and len(set(course)) == len(course)
    assert {plan.pad for plan in course} == {1, 8}  # 25 -> 32 by 8 and by 16 alike: tried once
    assert len(course) == 2 * 2 * 2
    assert {plan.pad for plan in planner.candidates(Network((400, 32, 10)), "float32")} == {1}
    assert {plan.pad for plan in planner.candidates(Network((400, 24, 20, 10)), "float32")} == {1, 8, 16}
    assert planner.candidates(Network((400, 25, 10)), "float32")[0] == Plan.fixed("float32")


class FakeClock:
    """time.perf_counter for _race: each call advances it by the cost of the call timed."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_race_keeps_each_calls_fastest_time_and_drops_slow_ones(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(planner, "_clock", clock)
    costs = {"fast": [3.0, 1.0, 1.2, 1.1], "close": [1.04] * 4, "slow": [2.0] * 4}
    counts = dict.fromkeys(costs, 0)

    def call(name):
        def run():
            clock.now += costs[name][min(counts[name], 3)] * 1e-3
            counts[name] += 1

        return run

    monkeypatch.setattr(planner, "MAX_ROUNDS", 6)
    best, rounds = planner._race({name: call(name) for name in costs}, budget=1.0, least=3)
    assert rounds == 6
    assert best == pytest.approx({"fast": 1.0e-3, "close": 1.04e-3, "slow": 2.0e-3})
    assert counts["slow"] == 2 and counts["close"] == counts["fast"] == 6  # dropped after the second round
    # rounds stop once the budget is spent and the least rounds are done: 6.04, 10.08,
    # 12.32 and 14.46 ms after each round here ...
    counts.update(dict.fromkeys(costs, 0))
    assert planner._race({name: call(name) for name in costs}, budget=0.013, least=3)[1] == 4
    # ... and after the first, when the least rounds would take well over the budget
    counts.update(dict.fromkeys(costs, 0))
    assert planner._race({name: call(name) for name in costs}, budget=0.008, least=3)[1] == 1  # 3 x 6.04 > 1.5 x 8


def test_a_network_too_wide_to_time_in_the_budget_keeps_the_fixed_forms(rng, monkeypatch):
    monkeypatch.setattr(planner, "BUDGET", 1e-6)
    planning = planner.measure(rng.random((3000, 100)), Network((100, 30, 10)), threads=1)
    assert planning.rounds == 1 and planning.plan == Plan.fixed("float64")


def test_the_choice_is_the_first_candidate_within_the_margin():
    order, within, beyond = ["fixed", "other", "third"], 1 + 0.9 * planner.MARGIN, 1 + 1.1 * planner.MARGIN
    assert planner._choose(order, {"fixed": within, "other": 1.0, "third": 1.0}) == "fixed"
    assert planner._choose(order, {"fixed": beyond, "other": within, "third": 1.0}) == "other"
    assert planner._choose(order, {"fixed": beyond, "other": beyond, "third": 1.0}) == "third"
    assert planner._choose(order, {"fixed": 1.1, "other": 1.0}, margin=0.15) == "fixed"


MEASURED = Plan("C", GRADIENT_FORMS[1], 8, None)  # what the made-up measurements find


def counting_measure(monkeypatch):
    calls = []

    def measure(X, network, threads=None, *, sharded=True):
        calls.append((X.shape, Network.of(network), threads, sharded))
        return planner.Planning(MEASURED, {"made up": 1.0}, 3, 0.01, 100)

    monkeypatch.setattr(planner, "measure", measure)
    return calls


def digits_like(m=5000, dtype=np.float64):
    return np.random.default_rng(0).random((m, 400)).astype(dtype)


def test_a_plan_is_measured_once_then_read_from_the_cache(monkeypatch, own_cache):
    calls = counting_measure(monkeypatch)
    X = digits_like()
    plan = planner.plan_for(X, (400, 25, 10), threads=2)
    assert plan == MEASURED and len(calls) == 1
    files = list(own_cache.iterdir())
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["plan"] == plan.to_dict() and record["key"]["layers"] == [400, 25, 10]
    assert record["key"]["rows"] == 2048 and record["key"]["threads"] == 2 and record["key"]["dtype"] == "float64"
    assert planner.plan_for(X, (400, 25, 10), threads=2) == plan and len(calls) == 1
    # another dtype, thread count or network is another key
    planner.plan_for(X.astype(np.float32), (400, 25, 10), threads=2)
    planner.plan_for(X, (400, 25, 10), threads=1)
    planner.plan_for(X, Network((400, 25, 10), "relu"), threads=2)
    assert len(calls) == 4 and len(list(own_cache.iterdir())) == 4


def test_a_plan_measured_on_a_busy_machine_serves_its_run_uncached(monkeypatch, own_cache):
    calls = counting_measure(monkeypatch)
    monkeypatch.setattr(planner, "_busy", lambda: True)
    assert planner.plan_for(digits_like(), (400, 25, 10), threads=2) == MEASURED
    assert not own_cache.exists()
    monkeypatch.setattr(planner, "_busy", lambda: False)
    planner.plan_for(digits_like(), (400, 25, 10), threads=2)
    assert len(calls) == 2 and len(list(own_cache.iterdir())) == 1
    monkeypatch.undo()  # the fixture's quiet machine too: the real check, with loads made up
    monkeypatch.setattr(planner.os, "getloadavg", lambda: (1e9, 0.0, 0.0))
    assert planner._busy()
    monkeypatch.setattr(planner.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not planner._busy()


def test_the_key_names_the_blas_and_buckets_the_rows():
    key = planner.plan_key(Network((400, 25, 10)), "float32", 2500, 2)
    assert key["rows"] == 2048 and planner.plan_key(Network((400, 25, 10)), "float32", 9000, 2)["rows"] == 4096
    assert key["blas"] and all(len(pool) == 3 for pool in key["blas"])  # library, version, kernel
    assert json.loads(json.dumps(key)) == key


@pytest.mark.parametrize(
    "damage",
    [b"not json {", b"[1, 2]", b'{"key": {"layers": [1]}, "plan": {}}', b"\xff\xfe", "wrong plan", "directory"],
)
def test_a_damaged_cache_file_is_ignored_with_a_warning_and_replaced(monkeypatch, own_cache, damage):
    calls = counting_measure(monkeypatch)
    X = digits_like()
    planner.plan_for(X, (400, 25, 10), threads=2)
    (path,) = own_cache.iterdir()
    if damage == "wrong plan":
        record = json.loads(path.read_text())
        record["plan"]["pad"] = 1000
        path.write_text(json.dumps(record))
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(damage)
    with pytest.warns(planner.PlanCacheWarning) as caught:
        plan = planner.plan_for(X, (400, 25, 10), threads=2)
    assert plan == MEASURED and len(calls) == 2
    assert "ignoring the plan cache file" in str(caught[0].message)
    assert all("\n" not in str(w.message) for w in caught)
    if damage == "directory":  # never replaced: it serves this run only, and says so
        assert any("could not keep the plan" in str(w.message) for w in caught) and path.is_dir()
    else:
        assert Plan.from_dict(json.loads(path.read_text())["plan"]) == plan


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(monkeypatch, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("NNLEARN_PLAN_CACHE", str(blocker / "plans"))
    counting_measure(monkeypatch)
    with pytest.warns(planner.PlanCacheWarning, match="could not keep the plan"):
        assert planner.plan_for(digits_like(), (400, 25, 10), threads=2).pad == 8


def test_plan_off_and_small_problems_use_the_fixed_forms_unmeasured(monkeypatch, own_cache):
    calls = counting_measure(monkeypatch)
    monkeypatch.setenv("NNLEARN_PLAN", "off")
    assert planner.plan_for(digits_like(), (400, 25, 10), threads=2) == Plan.fixed("float64")
    monkeypatch.setenv("NNLEARN_PLAN", "on")
    small = digits_like(200, np.float32)  # 200 x 10,285 weights: below MIN_PLAN_WORK
    assert planner.plan_for(small, (400, 25, 10), threads=1) == Plan.fixed("float32")
    assert calls == [] and not own_cache.exists()
    monkeypatch.setenv("NNLEARN_PLAN", "fast")
    with pytest.raises(ParameterError, match="NNLEARN_PLAN must be 'on' or 'off', got 'fast'"):
        planner.plan_for(digits_like(), (400, 25, 10))


def test_resolve_plan_takes_what_it_is_given(monkeypatch):
    calls = counting_measure(monkeypatch)
    X, network = digits_like(), Network((400, 25, 10))
    given = Plan("C", GRADIENT_FORMS[0], 16, 1)
    assert planner.resolve_plan(given, X, network) is given
    assert planner.resolve_plan(given.to_dict(), X, network) == given
    assert planner.resolve_plan("off", X, network) == planner.resolve_plan(None, X, network) == Plan.fixed("float64")
    assert calls == []
    assert planner.resolve_plan("auto", X, network, threads=2).pad == 8 and len(calls) == 1
    # a resumed run computes as the interrupted one did: its recorded plan, or the fixed
    # forms for a checkpoint from before plans
    assert planner.resolve_plan("auto", X, network, resume={"plan": given.to_dict()}) == given
    assert planner.resolve_plan("auto", X, network, resume={"x": [1.0]}) == Plan.fixed("float64")
    for bad, words in [("fast", "plan must be 'auto', 'off'"), ({"pad": 2}, "plan: expected the fields"), (3, "got 3")]:
        with pytest.raises(ParameterError, match=words) as caught:
            planner.resolve_plan(bad, X, network)
        assert "\n" not in str(caught.value)


def test_measuring_times_every_candidate_and_keeps_one_of_them(rng):
    network = Network((100, 30, 10))
    X = rng.random((3000, 100))
    planning = planner.measure(X, network, threads=2)
    forms = planner.candidates(network, X.dtype)
    assert Plan(planning.plan.hidden_order, planning.plan.gradient, planning.plan.pad) in forms
    assert planning.plan.shards in (None, 1)
    assert all(plan.describe() in planning.timings_ms for plan in forms)
    assert planning.rounds >= planner.CHOOSE_ROUNDS and planning.rows <= 1500
    kernel = {plan: planning.timings_ms[plan.describe()] for plan in forms}
    chosen = Plan(planning.plan.hidden_order, planning.plan.gradient, planning.plan.pad)
    assert kernel[chosen] <= min(kernel.values()) * (1 + planner.MARGIN)


def test_one_shard_is_kept_only_when_it_beats_a_shards_time_and_the_hand_off(rng, monkeypatch):
    network = Network((20, 8, 3))
    thetas, X, Y = problem(rng, network, m=400)
    plan = Plan("C", GRADIENT_FORMS[1], 8, None)
    monkeypatch.setattr(planner, "handoff_seconds", lambda workers: 0.0)
    # a shard said to take an hour: one shard of all the rows is faster
    chosen, timings = planner._shards(plan, 3600.0, 2, thetas, X, Y, network, budget=0.01)
    assert chosen == Plan("C", GRADIENT_FORMS[1], 8, 1) and "hand-off to 2 threads" in timings
    # a shard said to take no time and a free hand-off: the shards stay
    assert planner._shards(plan, 0.0, 2, thetas, X, Y, network, budget=0.01)[0] == plan
    # ... unless the hand-off costs an hour
    monkeypatch.setattr(planner, "handoff_seconds", lambda workers: 3600.0)
    assert planner._shards(plan, 0.0, 2, thetas, X, Y, network, budget=0.01)[0].shards == 1


def test_the_hand_off_is_measured_through_the_shards_pool():
    from nnlearn.threads import handoff_seconds

    seconds = handoff_seconds(2, repeats=3)
    assert 0 < seconds < float("inf")


def test_the_plans_shard_count_replaces_the_rule(rng):
    network = Network((7, 6, 4))
    thetas, X, Y = problem(rng, network, m=90)
    whole = data_term(thetas, X, Y, network=network)
    for shards in (1, 3, 200):
        term = ShardedDataTerm(X, Y, network, threads=2, plan=Plan("F", GRADIENT_FORMS[0], 1, shards))
        assert len(term.shards) == min(shards, 90)
        loss, grads = term(thetas)
        assert loss == pytest.approx(whole[0], rel=1e-12)
        np.testing.assert_allclose(pack(grads), pack(whole[1]), rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_a_cluster_computes_with_the_clients_plan_bit_for_bit(rng):
    distributed = pytest.importorskip("distributed")
    import nnlearn.cluster
    from nnlearn.cluster import ClusterDataTerm

    network = Network((400, 25, 10))
    thetas, X, Y = problem(rng, network, m=3000)
    plan = Plan("C", GRADIENT_FORMS[1], 8, None)
    local = ShardedDataTerm(X, Y, network, threads=2, plan=plan)(thetas)
    fixed = ShardedDataTerm(X, Y, network, threads=2)(thetas)
    assert not np.array_equal(pack(local[1]), pack(fixed[1]))  # the plan shows in the last bits
    with nnlearn.cluster.local_cluster(2) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        term = ClusterDataTerm(client, X, Y, network, plan=plan)
        assert term.bounds == [0, 1500, 3000]
        loss, grads = term(thetas)
        with nnlearn.cluster.data_term_on(client, plan=plan) as factory:
            assert factory(X, Y, network).plan == plan
            assert factory(X, Y, network, plan=Plan.fixed("float64")).plan == Plan.fixed("float64")
    assert loss == local[0] and np.array_equal(pack(grads), pack(local[1]))


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNLEARN_PLAN_CACHE", str(tmp_path / "x"))
    assert planner.plan_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("NNLEARN_PLAN_CACHE")
    monkeypatch.setenv("NNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    assert planner.plan_cache_dir() == tmp_path / "cache" / "plans"
    assert os.environ.get("NNLEARN_PLAN_CACHE") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert planner.planning_enabled()
