import os
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from nnlearn.compute import _threads as threads
from nnlearn.compute import make_objective
from nnlearn.compute._threads import ShardedDataTerm, default_threads
from nnlearn.core import cost_and_gradient, data_term, init_random, one_hot, pack

LAYERS = (7, 6, 4)


def problem(rng, m, dtype=np.float64, layer_sizes=LAYERS):
    X = rng.standard_normal((m, layer_sizes[0])).astype(dtype)
    Y = one_hot(np.arange(m) % layer_sizes[-1])[1].astype(dtype)
    thetas = [t.astype(dtype) for t in init_random(layer_sizes, epsilon=0.5, rng=rng)]
    return thetas, X, Y


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(threads, "MIN_SHARD_WORK", 1)


@pytest.mark.parametrize("m, count", [(10, 2), (11, 3), (1203, 4), (5, 5)])
def test_shards_cover_every_example_once_in_order(small_shards, rng, m, count):
    _, X, Y = problem(rng, m)
    term = ShardedDataTerm(X, Y, LAYERS, threads=count)
    assert len(term.shards) == count
    np.testing.assert_array_equal(np.concatenate([shard[0] for shard in term.shards]), X)
    np.testing.assert_array_equal(np.concatenate([shard[1] for shard in term.shards]), Y)
    sizes = [shard[0].shape[0] for shard in term.shards]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("layer_sizes", [LAYERS, (7, 6, 5, 4)])
@pytest.mark.parametrize("count", [2, 3])
def test_sharded_sums_equal_the_whole_data_term(small_shards, rng, dtype, rtol, layer_sizes, count):
    thetas, X, Y = problem(rng, 101, dtype, layer_sizes)
    loss, grads = data_term(thetas, X, Y)
    sharded_loss, sharded_grads = ShardedDataTerm(X, Y, layer_sizes, threads=count)(thetas)
    assert sharded_loss == pytest.approx(loss, rel=rtol)
    for grad, sharded in zip(grads, sharded_grads):
        assert sharded.dtype == dtype
        np.testing.assert_allclose(sharded, grad, rtol=rtol, atol=rtol * np.abs(grad).max())


def test_sample_weights_are_sharded_with_their_examples(small_shards, rng):
    thetas, X, Y = problem(rng, 60)
    weights = rng.uniform(0.1, 3.0, size=60)
    loss, grads = data_term(thetas, X, Y, weights)
    sharded_loss, sharded_grads = ShardedDataTerm(X, Y, LAYERS, weights, threads=3)(thetas)
    assert sharded_loss == pytest.approx(loss, rel=1e-12)
    for grad, sharded in zip(grads, sharded_grads):
        np.testing.assert_allclose(sharded, grad, rtol=1e-12, atol=1e-14)


def test_repeated_calls_are_bit_identical(small_shards, rng):
    thetas, X, Y = problem(rng, 90)
    term = ShardedDataTerm(X, Y, LAYERS, threads=3)
    first, second = term(thetas), term(thetas)
    assert first[0] == second[0]
    for a, b in zip(first[1], second[1]):
        np.testing.assert_array_equal(a, b)


def test_each_shard_gets_at_least_the_least_work(monkeypatch, rng):
    weights = 8 * 6 + 7 * 4  # of the 7-6-4 network
    monkeypatch.setattr(threads, "MIN_SHARD_WORK", 100 * weights)  # 100 examples a shard
    for m, shards in [(199, 1), (200, 2), (299, 2), (300, 3), (10_000, 8)]:
        _, X, Y = problem(rng, m)
        assert len(ShardedDataTerm(X, Y, LAYERS, threads=8).shards) == shards
    assert len(ShardedDataTerm(X, Y, LAYERS, threads=1).shards) == 1
    # a larger network has more work per example, so it is shared sooner
    _, X, Y = problem(rng, 150, layer_sizes=(7, 60, 4))
    assert len(ShardedDataTerm(X, Y, (7, 60, 4), threads=8).shards) == 8


def test_the_digits_are_shared_and_scikit_learns_8x8_digits_are_not(rng):
    # the measured break-even: 2 shards won on 800 of the 400-25-10 digits, lost on
    # 1437 of the 64-25-10 ones (threads.MIN_SHARD_WORK)
    X, Y = np.zeros((800, 400)), np.zeros((800, 10))
    assert len(ShardedDataTerm(X, Y, (400, 25, 10), threads=2).shards) == 2
    X, Y = np.zeros((1437, 64)), np.zeros((1437, 10))
    assert len(ShardedDataTerm(X, Y, (64, 25, 10), threads=2).shards) == 1


def test_the_objective_matches_the_core_for_every_thread_count(small_shards, rng):
    thetas, X, Y = problem(rng, 300)
    J, grads = cost_and_gradient(thetas, X, Y, 1.5)
    for count in (1, 2, 3):
        J_threads, grad = make_objective(X, Y, 1.5, LAYERS, threads=count)(pack(thetas))
        assert J_threads == pytest.approx(J, rel=1e-12)
        np.testing.assert_allclose(grad, pack(grads), rtol=1e-10, atol=1e-14)


def test_the_blas_thread_count_is_restored_after_a_call(small_shards, rng):
    thetas, X, Y = problem(rng, 20)
    before = [pool["num_threads"] for pool in threadpool_info()]
    ShardedDataTerm(X, Y, LAYERS, threads=2)(thetas)
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_default_threads_obey_a_callers_limit():
    with threadpool_limits(limits=1, user_api="blas"):
        assert default_threads() == 1
    assert default_threads() >= 1


def test_an_error_in_a_shard_reaches_the_caller(small_shards, rng):
    thetas, X, Y = problem(rng, 20)
    wrong = [thetas[0][:, :-1], thetas[1]]  # one input weight short
    with pytest.raises(ValueError):
        ShardedDataTerm(X, Y, LAYERS, threads=2)(wrong)


def _start_both_workers(pool, workers=2):
    """Make the pool run ``workers`` threads at once, then wait until all are idle."""
    barrier = threading.Barrier(workers, timeout=10)

    def where():
        barrier.wait()  # holds each task on its own worker thread
        return threading.get_ident(), frozenset(os.sched_getaffinity(0))

    seen = dict(future.result() for future in [pool.submit(where) for _ in range(workers)])
    for _ in range(100):  # a worker marks itself idle just after its task's result is set
        if pool._idle_semaphore._value >= workers:
            break
        time.sleep(0.01)
    return seen


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) != 2,
    reason="needs Linux and exactly two processors",
)
def test_one_worker_per_processor_is_pinned_to_a_processor_of_its_own():
    cpus = sorted(os.sched_getaffinity(0))
    seen = _start_both_workers(threads._pool(2))
    assert len(seen) == 2
    pinned = list(seen.values())
    assert all(len(s) == 1 and s <= set(cpus) for s in pinned)
    assert len(set(pinned)) == 2
    assert set(os.sched_getaffinity(0)) == set(cpus)  # the calling thread is left alone


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs Linux and two processors"
)
def test_fewer_workers_than_processors_are_left_unpinned():
    cpus = frozenset(os.sched_getaffinity(0))
    workers = len(cpus) - 1
    seen = (
        _start_both_workers(threads._pool(workers), workers)
        if workers > 1
        else {0: threads._pool(1).submit(lambda: frozenset(os.sched_getaffinity(0))).result()}
    )
    assert all(s == cpus for s in seen.values())


def _sharded_call_in_child(queue, X, Y, thetas):
    queue.put(ShardedDataTerm(X, Y, LAYERS, threads=2)(thetas)[0])


@pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(os, "sched_getaffinity"), reason="needs Linux")
def test_a_process_forked_after_a_sharded_call_makes_its_own_workers(small_shards, rng):
    import multiprocessing

    thetas, X, Y = problem(rng, 40)
    loss = ShardedDataTerm(X, Y, LAYERS, threads=2)(thetas)[0]
    _start_both_workers(threads._pool(2))  # two idle threads the child will not have
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sharded_call_in_child, args=(queue, X, Y, thetas))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung on the pool it inherited")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == loss
