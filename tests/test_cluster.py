"""Full-batch training on a Dask cluster: 2 worker processes on 127.0.0.1, started here."""

import os
import signal

import distributed  # the cluster extra, which the test extra installs
import numpy as np
import pytest

import nnlearn
import nnlearn.compute._cluster
from nnlearn.compute._cluster import ClusterDataTerm, ClusterError, ClusterLost, WorkerLost, connect
from nnlearn.compute._partitions import Partitions
from nnlearn.compute._threads import ShardedDataTerm
from nnlearn.core import Network, init_random, one_hot
from nnlearn.datasets._shards import load_shards, write_shards
from nnlearn.errors import DataError, ExamplesLost, ParameterError


def local_cluster():
    return nnlearn.compute._cluster.local_cluster(2)


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="module")
def digits():
    return nnlearn.load_digits20()


@pytest.fixture(scope="module")
def shards(tmp_path_factory, digits):
    path = tmp_path_factory.mktemp("shards") / "digits"
    write_shards(*digits, path, rows_per_shard=1700)  # 3 shards: 1700, 1700, 1600 rows
    return path


def relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def same_sums(a, b):
    return a[0] == b[0] and all(np.array_equal(g, h) for g, h in zip(a[1], b[1]))


@pytest.mark.parametrize("hidden", [(25,), (20, 10), (16, 12, 8)], ids=["1", "2", "3"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_cluster_sums_equal_this_machines_bit_for_bit(client, digits, hidden, dtype):
    X, y = digits
    rows = np.random.default_rng(0).permutation(5000)[:3000]  # every class (the digits are in class order)
    X, y = X[rows].astype(dtype), y[rows]
    _, Y = one_hot(y)
    Y = Y.astype(dtype)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]).astype(dtype)
    network = Network((400, *hidden, 10), "tanh" if len(hidden) == 2 else "sigmoid")
    thetas = init_random(network, rng=1, dtype=dtype)
    for sample_weight in (None, weights):
        term = ClusterDataTerm(client, X, Y, network, sample_weight)
        local = ShardedDataTerm(X, Y, network, sample_weight, threads=2)
        assert term.bounds == [0, 1500, 3000] and len(local.shards) == 2
        assert same_sums(term(thetas), local(thetas))
        assert term.m == local.m and term.dtype == local.dtype


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_shards_of_other_boundaries_agree_to_rounding(client, shards, digits, dtype, tolerance):
    X_dask, _ = load_shards(shards)
    X, y = digits
    _, Y = one_hot(y)
    network = Network((400, 25, 10))
    thetas = init_random(network, rng=2, dtype=dtype)
    term = ClusterDataTerm(client, X_dask.astype(dtype), Y.astype(dtype), network)
    assert term.bounds == [0, 1700, 3400, 5000]
    J, grads = term(thetas)
    J_local, grads_local = ShardedDataTerm(X.astype(dtype), Y.astype(dtype), network, threads=1)(thetas)
    assert J == pytest.approx(J_local, rel=tolerance)
    for g, h in zip(grads, grads_local):
        assert relative(g, h) < tolerance


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "fmincg"])
def test_fifty_iterations_end_at_the_local_runs_weights(client, shards, digits, optimizer):
    X, y = digits
    local = nnlearn.train(X, y, optimizer=optimizer, max_iter=50)
    same_bounds = nnlearn.train(X, y, optimizer=optimizer, max_iter=50, cluster=client)
    assert all(np.array_equal(a, b) for a, b in zip(same_bounds.thetas, local.thetas))
    # Other partition boundaries change the sums' last bits. L-BFGS carries that to the
    # weights as it is; fmincg's line search branches on comparisons that rounding can
    # tip, and after 50 iterations its weights differ by ~1e-4 and its cost by ~5e-5
    # (measured), as the course's Octave fmincg drifts with another BLAS thread count.
    other_bounds = nnlearn.train(*load_shards(shards), optimizer=optimizer, max_iter=50, cluster=client)
    if optimizer == "lbfgs":
        for a, b in zip(other_bounds.thetas, local.thetas):
            assert relative(a, b) < 1e-9
    else:
        assert other_bounds.history["cost"][-1] == pytest.approx(local.history["cost"][-1], rel=5e-4)


def kill_a_worker_at(client, iteration):
    def callback(i, J, x):
        if i == iteration:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)

    return callback


@pytest.mark.slow
@pytest.mark.parametrize("source", ["numpy", "dask"])
def test_a_worker_killed_mid_run_changes_nothing(client, shards, digits, source):
    X, y = digits if source == "numpy" else load_shards(shards)
    undisturbed = nnlearn.train(X, y, optimizer="lbfgs", max_iter=100, cluster=client)
    workers_before = set(client.run(os.getpid).values())
    with pytest.warns(WorkerLost, match=r"lost the Dask worker tcp://127\.0\.0\.1:\d+; its [\d,]+ examples were sent"):
        disturbed = nnlearn.train(
            X, y, optimizer="lbfgs", max_iter=100, cluster=client, callback=kill_a_worker_at(client, 30)
        )
    assert disturbed.history["cluster_lost_workers"] == 1
    assert set(client.run(os.getpid).values()) != workers_before  # the nanny restarted one
    assert disturbed.history["n_iter"] == undisturbed.history["n_iter"] == 100
    assert all(np.array_equal(a, b) for a, b in zip(disturbed.thetas, undisturbed.thetas))


@pytest.mark.slow
def test_a_scheduler_that_goes_away_gives_one_error_and_keeps_the_weights(digits):
    X, y = digits
    cluster = local_cluster()
    client = distributed.Client(cluster, set_as_default=False)

    def close_the_cluster(i, J, x):
        if i == 5:
            cluster.close()

    try:
        with pytest.raises(ClusterLost, match="lost the Dask scheduler") as caught:
            nnlearn.train(X, y, optimizer="lbfgs", max_iter=50, cluster=client, callback=close_the_cluster)
    finally:
        client.close()
    model = caught.value.model
    assert isinstance(caught.value, ExamplesLost)
    assert model.history["n_iter"] == 5 and model.history["interrupted"]
    five = nnlearn.train(X, y, optimizer="lbfgs", max_iter=5)  # the weights it had reached
    assert all(np.array_equal(a, b) for a, b in zip(model.thetas, five.thetas))


def test_mini_batch_optimizers_refuse_a_cluster(digits):
    X, y = digits
    with pytest.raises(ParameterError, match="mini-batch optimiser 'adam' runs on one machine"):
        nnlearn.train(X, y, optimizer="adam", cluster=2)


def test_an_unreachable_scheduler_is_one_clear_error():
    with pytest.raises(ClusterError, match="cannot reach a Dask scheduler at tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9", timeout=1)


def test_current_without_a_client_is_one_clear_error():
    with pytest.raises(ClusterError, match="this process has no Dask client"):
        connect("current")


def test_partitions_are_kept_aligned_in_the_runs_dtype():
    network = Network((4, 3, 2))
    held = Partitions(network, np.float32)
    buffer = np.zeros(6 * 8 * 8 + 3, dtype=np.uint8)
    X = buffer[3:].view(np.float64).reshape(6, 8)[:, :4]  # misaligned, strided, float64
    X[:] = np.arange(24).reshape(6, 4)
    assert not X.flags.aligned
    assert held.hold(0, 100, X, np.eye(2)[[0, 1, 0, 1, 0, 1]]) == 6
    kept, Y, _ = held.parts[0]
    assert kept.ctypes.data % 64 == 0 and Y.ctypes.data % 64 == 0 and kept.flags.c_contiguous
    assert kept.dtype == np.float32 and np.array_equal(kept, X)
    X[4, 1] = np.inf
    with pytest.raises(DataError, match="NaN or infinite values in row 104"):
        held.hold(1, 100, X, np.eye(2)[[0, 1, 0, 1, 0, 1]])


@pytest.mark.parametrize("bad", [0, -1, 2.5, None, True])
def test_a_bad_cluster_argument_is_refused(bad):
    with pytest.raises(ParameterError):
        connect(bad)


def test_non_finite_values_in_dask_data_are_found_on_the_workers(client, tmp_path):
    X = np.random.default_rng(0).random((60, 4))
    X[45, 2] = np.nan
    write_shards(X, np.arange(60) % 3, tmp_path / "s", rows_per_shard=20)
    X_dask, y_dask = load_shards(tmp_path / "s")
    with pytest.raises(DataError, match="NaN or infinite values in row 45"):
        nnlearn.train(X_dask, y_dask, optimizer="lbfgs", max_iter=5, cluster=client)


@pytest.mark.slow
def test_the_estimator_takes_a_scheduler_address_and_clone_keeps_it(client, digits):
    from sklearn.base import clone

    X, y = digits
    address = client.scheduler.address
    estimator = nnlearn.NeuralNetClassifier(max_iter=30, cluster=address)
    assert clone(estimator).get_params()["cluster"] == address
    fitted = estimator.fit(X, y)
    local = nnlearn.NeuralNetClassifier(max_iter=30).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(fitted.thetas_, local.thetas_))


@pytest.mark.slow
def test_the_estimator_takes_a_live_client_or_the_current_one_and_clone_shares_it(client, digits):
    from sklearn.base import clone

    X, y = digits
    local = nnlearn.NeuralNetClassifier(max_iter=10).fit(X, y)
    estimator = nnlearn.NeuralNetClassifier(max_iter=10, cluster=client)
    copy = clone(estimator)
    assert copy.get_params()["cluster"] is client and copy is not estimator
    assert all(np.array_equal(a, b) for a, b in zip(copy.fit(X, y).thetas_, local.thetas_))
    assert client.status == "running"  # the client given is the user's: left open
    with client.as_current():
        current = nnlearn.NeuralNetClassifier(max_iter=10, cluster="current").fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(current.thetas_, local.thetas_))


@pytest.mark.parametrize(
    ("cluster", "optimizer", "message"),
    [
        (0, "lbfgs", "number of local worker processes >= 1"),
        ("", "lbfgs", "scheduler address"),
        (2, "adam", "mini-batch optimiser 'adam' runs on one machine"),
    ],
)
def test_the_estimator_refuses_a_bad_cluster_before_any_work(digits, cluster, optimizer, message):
    X, y = digits
    with pytest.raises(ParameterError, match=message):
        nnlearn.NeuralNetClassifier(cluster=cluster, optimizer=optimizer).fit(X[:100], y[:100])


# The command line: nnlearn train --cluster, nnlearn shard.


@pytest.mark.slow
def test_the_command_line_trains_on_a_cluster_to_the_same_model(capsys, tmp_path, monkeypatch):
    from nnlearn import load_model

    from .helpers import run_cli

    monkeypatch.chdir(tmp_path)
    common = ["train", "--optimizer", "lbfgs", "--max-iter", "20", "--quiet", "--json"]
    assert run_cli(capsys, *common, "--out", "local.npz").returncode == 0
    result = run_cli(capsys, *common, "--out", "cluster.npz", "--cluster", "2")
    assert result.returncode == 0, result.stderr
    local, clustered = load_model("local.npz"), load_model("cluster.npz")
    assert all(np.array_equal(a, b) for a, b in zip(local.thetas, clustered.thetas))
    # a shard directory stays on the workers; its held-out part is scored there
    assert run_cli(capsys, "shard", "digits20", "shards", "--rows-per-shard", "1250").returncode == 0
    result = run_cli(capsys, *common, "--out", "sharded.npz", "--cluster", "2", "--data", "shards")
    assert result.returncode == 0, result.stderr
    payload = __import__("json").loads(result.stdout)
    assert payload["m_train"] == 4000 and payload["m_test"] == 1000 and payload["test_accuracy"] > 0.85
    # held-out rows come out of each shard: one partition a shard, whatever Dask's chunk size
    rows = payload["cluster"]["partition_rows"]
    assert len(rows) == 4 and sum(rows) == 4000 and all(900 <= n <= 1100 for n in rows), rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "abc"], "'abc' is not a scheduler address"),
        (["--cluster", "0"], "at least 1 worker process"),
        (["--cluster", "2", "--optimizer", "sgd"], "mini-batch optimiser 'sgd' runs on one machine"),
    ],
)
def test_bad_cluster_options_are_one_line(capsys, tmp_path, monkeypatch, args, message):
    from .helpers import assert_one_line_error, run_cli

    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "train", "--optimizer", "lbfgs", *args)
    assert_one_line_error(result, message)
    assert list(tmp_path.iterdir()) == []
