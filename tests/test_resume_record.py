"""The exactness record of ``nnlearn train``'s checkpoints: what a resumed run compares.

A run resumed with a difference (other data, other threads, another cluster) is not the
uninterrupted run any more, and its checkpoints keep saying so to every later resume.
Where the sums are computed is recorded for cluster runs too: the partitions and the
cluster. The command line runs in this process; a local cluster, where one is needed,
is started by the command as a user's would be.
"""

import json
import shutil
import signal

import numpy as np
import pytest

import nnlearn
import nnlearn.cli._monitor
import nnlearn.compute._cluster
import nnlearn.compute._threads
from nnlearn.core import Network
from nnlearn.errors import ModelFileError
from nnlearn.training import Continuation
from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint
from nnlearn.training._exactness import NOT_EXACT_SINCE, compare_exactness, exactness_record

from .helpers import run_cli
from .test_interrupt import signal_at

FMINCG = ("--optimizer", "fmincg", "--quiet", "--json")


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """``cli(*args)``: the command line in-process, in ``tmp_path``; its JSON result."""
    monkeypatch.chdir(tmp_path)

    def run(*args, status=0):
        result = run_cli(capsys, *args)
        assert result.returncode == status, result.stderr
        return result

    return run


def settings_of(path):
    return load_checkpoint(path)[0]


def differences_of(result):
    return json.loads(result.stdout)["resume_differences"]


def write_csv(path, X, y):
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g")


# ----------------------------------------------------------- a resume that differed


def test_changed_data_are_reported_by_every_later_resume(cli, tmp_path):
    X, y = nnlearn.load_digits8()
    write_csv(tmp_path / "d8.csv", X, y)
    cli("train", "--data", "d8.csv", *FMINCG, "--max-iter", "2", "--checkpoint", "d8.ckpt", "--out", "a.npz")
    write_csv(tmp_path / "d8.csv", X[::-1], y[::-1])  # edited: the same examples in another order

    first = cli("train", "--quiet", "--json", "--resume", "d8.ckpt", "--max-iter", "4", "--out", "b.npz")
    assert "warning: resuming d8.ckpt: the data differ" in first.stderr
    assert [d["what"] for d in differences_of(first)] == ["the data"]
    settings = settings_of(tmp_path / "d8.ckpt")
    assert settings[NOT_EXACT_SINCE] == "iteration 2: the data changed"

    # The checkpoint it wrote records the data it ran on; the note says the run is not
    # the uninterrupted one, resume after resume.
    for max_iter in ("6", "8"):
        again = cli(
            "train", "--quiet", "--json", "--resume", "d8.ckpt", "--max-iter", max_iter, "--out", "b.npz", "--force"
        )
        lines = [line for line in again.stderr.splitlines() if "warning" in line]
        assert lines == [
            "nnlearn train: warning: resuming d8.ckpt: this run has not been exact since iteration 2: the data changed"
        ]
        (difference,) = differences_of(again)
        assert difference["what"] == "history" and difference["then"] == "iteration 2: the data changed"
        assert settings_of(tmp_path / "d8.ckpt")[NOT_EXACT_SINCE] == "iteration 2: the data changed"


def test_every_checkpoint_write_carries_the_note_an_interrupted_one_too(cli, tmp_path, monkeypatch):
    X, y = nnlearn.load_digits8()
    write_csv(tmp_path / "d8.csv", X, y)
    cli("train", "--data", "d8.csv", *FMINCG, "--max-iter", "2", "--checkpoint", "d8.ckpt", "--out", "a.npz")
    write_csv(tmp_path / "d8.csv", X[::-1], y[::-1])
    writes = []
    real = nnlearn.cli._monitor.save_checkpoint

    def watched(path, settings, state):
        writes.append(settings.get(NOT_EXACT_SINCE))
        return real(path, settings, state)

    monkeypatch.setattr(nnlearn.cli._monitor, "save_checkpoint", watched)
    monkeypatch.setattr(nnlearn.cli._monitor.Monitor, "callback", signal_at(5, signal.SIGINT))
    cli(
        "train",
        "--quiet",
        "--json",
        "--resume",
        "d8.ckpt",
        "--max-iter",
        "50",
        "--checkpoint-every",
        "0",
        "--out",
        "b.npz",
        status=130,
    )
    assert len(writes) >= 3 and set(writes) == {"iteration 2: the data changed"}
    assert settings_of(tmp_path / "d8.ckpt")[NOT_EXACT_SINCE] == "iteration 2: the data changed"


def test_other_threads_are_noted_and_each_later_change_is_added(cli, tmp_path, monkeypatch):
    # 4000 examples of a 400-25-10 network are enough work for two shards.
    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 2)
    cli("train", *FMINCG, "--max-iter", "1", "--checkpoint", "c.ckpt", "--out", "a.npz")
    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 1)  # OPENBLAS_NUM_THREADS=1
    first = cli("train", "--quiet", "--json", "--resume", "c.ckpt", "--max-iter", "2", "--out", "b.npz")
    changed = "summed in 2 shards on 2 threads -> 1 shard on 1 thread"
    assert [(d["then"], d["now"]) for d in differences_of(first)] == [("2 shards on 2 threads", "1 shard on 1 thread")]
    settings = settings_of(tmp_path / "c.ckpt")
    assert settings["exact.threads"] == 1 and settings[NOT_EXACT_SINCE] == f"iteration 1: {changed}"

    same = cli("train", "--quiet", "--json", "--resume", "c.ckpt", "--max-iter", "3", "--out", "b.npz", "--force")
    assert [d["what"] for d in differences_of(same)] == ["history"]
    assert f"this run has not been exact since iteration 1: {changed}" in same.stderr

    # Back on two threads: another change, added to the note (the first stays first).
    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 2)
    back = cli("train", "--quiet", "--json", "--resume", "c.ckpt", "--max-iter", "4", "--out", "b.npz", "--force")
    assert [d["what"] for d in differences_of(back)] == ["history", "the partitions of examples the cost is summed in"]
    assert settings_of(tmp_path / "c.ckpt")[NOT_EXACT_SINCE] == (
        f"iteration 1: {changed}, then iteration 3: summed in 1 shard on 1 thread -> 2 shards on 2 threads"
    )


def test_an_unchanged_resume_adds_no_note(cli, tmp_path):
    cli("train", "--data", "digits8", *FMINCG, "--max-iter", "2", "--checkpoint", "c.ckpt", "--out", "a.npz")
    resumed = cli("train", "--quiet", "--json", "--resume", "c.ckpt", "--max-iter", "4", "--out", "b.npz")
    assert differences_of(resumed) == [] and "warning" not in resumed.stderr
    assert NOT_EXACT_SINCE not in settings_of(tmp_path / "c.ckpt")


def test_the_checkpoint_schema_takes_exact_scalars_and_refuses_the_rest(cli, tmp_path):
    cli("train", "--data", "digits8", *FMINCG, "--max-iter", "1", "--checkpoint", "c.ckpt", "--out", "a.npz")
    settings, state = load_checkpoint(tmp_path / "c.ckpt")
    scalars = {
        NOT_EXACT_SINCE: "iteration 1: the data changed, then iteration 7: " + "x" * 1900,
        "exact.cluster": "tcp://10.0.0.1:8786",
        "exact.shards": 12,
        "exact.future_ratio": 0.5,
        "exact.future_flag": True,
        "exact.future_unknown": None,
    }
    save_checkpoint(tmp_path / "d.ckpt", {**settings, **scalars}, state)
    loaded, _ = load_checkpoint(tmp_path / "d.ckpt")
    assert {key: loaded[key] for key in scalars} == scalars
    with pytest.raises(ModelFileError, match="exact.nested"):  # the schema checks them: settings stay flat
        save_checkpoint(tmp_path / "e.ckpt", {**settings, "exact.nested": {"a": 1}}, state)


def test_the_note_keeps_its_first_and_latest_entries_within_bounds():
    X, y = nnlearn.load_digits8()
    network = Network((X.shape[1], 25, 10))
    record = exactness_record("digits8", X, y, X, network, "fmincg")
    long = "iteration 1: the data changed" + "".join(f", then iteration {i}: NumPy 0.{i} -> 1" for i in range(2, 200))
    resumed = {**record, "exact.numpy": "0.0", NOT_EXACT_SINCE: long}
    at_900 = Continuation(np.zeros(1), {"history": [0.0] * 900}, resumed)
    note = exactness_record("digits8", X, y, X, network, "fmincg", resumed=at_900)[NOT_EXACT_SINCE]
    assert note.startswith("iteration 1: the data changed, ..., then iteration 900: NumPy 0.0 -> ")
    assert len(note) <= 2000


# ----------------------------------------------------------- where the sums are computed


def digits_record(**where):
    X, y = nnlearn.load_digits20()
    return exactness_record("digits20", X, y, X[:4000], Network((400, 25, 10)), "fmincg", **where)


def test_a_local_cluster_records_one_partition_per_worker():
    record = digits_record(cluster=3)
    assert (record["exact.shards"], record["exact.bounds"], record["exact.cluster"]) == (3, "even", "local 3")
    X, y = nnlearn.load_digits8()
    small = exactness_record("digits8", X, y, X[:2], Network((64, 5, 10)), "fmincg", cluster=3)
    assert small["exact.shards"] == 2  # at most one partition per example


class FakeClient:
    def nthreads(self):
        return {"tcp://10.0.0.2:40000": 2, "tcp://10.0.0.3:40000": 3}


def test_a_scheduler_address_records_its_workers_threads(monkeypatch):
    closed = []

    def connect(cluster, timeout=10.0):
        assert cluster == "tcp://10.0.0.1:8786"
        return FakeClient(), lambda: closed.append(True)

    monkeypatch.setattr(nnlearn.compute._cluster, "connect", connect)
    record = digits_record(cluster="tcp://10.0.0.1:8786")
    assert (record["exact.shards"], record["exact.cluster"]) == (5, "tcp://10.0.0.1:8786") and closed == [True]
    # A client already connected is asked, not a new connection.
    monkeypatch.setattr(nnlearn.compute._cluster, "connect", None)
    assert digits_record(cluster="tcp://10.0.0.1:8786", client=FakeClient())["exact.shards"] == 5


def test_a_shard_directory_on_a_cluster_records_its_chunks(tmp_path):
    pytest.importorskip("dask.array")
    from nnlearn.datasets._shards import load_shards, write_shards

    X, y = nnlearn.load_digits20()
    write_shards(X, y, tmp_path / "shards", rows_per_shard=1700)
    X_dask, y_dask = load_shards(tmp_path / "shards")
    record = exactness_record(str(tmp_path / "shards"), X_dask, y, X_dask, Network((400, 25, 10)), "fmincg", cluster=2)
    assert (record["exact.shards"], record["exact.bounds"], record["exact.cluster"]) == (3, "chunks", "local 2")


def layout(shards, cluster="none", bounds="even", threads=None):
    """A record that differs from the others only in where its sums were computed."""
    return {
        "exact.nnlearn": "1.0",
        "exact.numpy": "2.0",
        "exact.blas": "openblas 0.3 Haswell",
        "exact.data_sha256": "0" * 64,
        "exact.threads": shards if threads is None else threads,
        "exact.shards": shards,
        "exact.bounds": bounds,
        "exact.cluster": cluster,
    }


@pytest.mark.parametrize(
    ("then", "now", "difference"),
    [
        # The same partitions, on this machine: the same sums bit for bit (nnlearn.compute._cluster).
        (layout(3, "local 3"), layout(3), None),
        (layout(3, "local 3"), layout(3, "local 3"), None),
        (layout(5, "tcp://h:8786"), layout(5, "tcp://h:8786"), None),
        (
            layout(3, "local 3"),
            layout(2),
            ("the partitions", "3 partitions on a local cluster of 3 workers", "2 shards on 2 threads"),
        ),
        (
            layout(1, threads=16),
            layout(1, "local 1"),
            None,
        ),
        (
            layout(2, threads=16),
            layout(3, "local 3"),
            ("the partitions", "2 shards on 2 of 16 threads", "3 partitions on a local cluster of 3 workers"),
        ),
        (
            layout(3, "local 3", "chunks"),
            layout(3),
            ("the partitions", "3 partitions, the shard directory's chunks, on a local cluster of 3 workers", None),
        ),
        (
            layout(3, "local 3"),
            layout(3, "tcp://h:8786"),
            ("the machines", None, "3 partitions on the cluster at tcp://h:8786"),
        ),
    ],
)
def test_where_the_sums_were_computed_is_compared(then, now, difference):
    found = compare_exactness(then, now)
    if difference is None:
        assert found == []
        return
    what, before, after = difference
    (entry,) = found
    assert entry["what"].startswith(what)
    assert before is None or entry["then"] == before
    assert after is None or entry["now"] == after
    assert "near, not at, the uninterrupted run's weights" in entry["meaning"]


def test_a_record_from_before_the_cluster_was_recorded_is_a_local_one():
    older = {key: value for key, value in layout(2).items() if key not in ("exact.cluster", "exact.bounds")}
    assert compare_exactness(older, layout(2)) == []
    assert compare_exactness(older, layout(2, "local 2")) == []
    assert compare_exactness(older, layout(3, "local 3")) != []


@pytest.mark.slow
def test_a_cluster_run_resumed_here_says_it_ends_near_not_at(cli, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    cli("train", *FMINCG, "--cluster", "3", "--max-iter", "10", "--checkpoint", "c3.ckpt", "--out", "a.npz")
    settings = settings_of(tmp_path / "c3.ckpt")
    assert (settings["exact.shards"], settings["exact.cluster"]) == (3, "local 3")
    shutil.copy(tmp_path / "c3.ckpt", tmp_path / "copy.ckpt")

    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 1)
    here = cli("train", "--quiet", "--json", "--resume", "c3.ckpt", "--max-iter", "30", "--out", "b.npz")
    (difference,) = differences_of(here)
    assert (difference["then"], difference["now"]) == (
        "3 partitions on a local cluster of 3 workers",
        "1 shard on 1 thread",
    )
    assert "ends near, not at, the uninterrupted run's weights" in here.stderr
    assert settings_of(tmp_path / "c3.ckpt")[NOT_EXACT_SINCE] == (
        "iteration 10: summed in 3 partitions on a local cluster of 3 workers -> 1 shard on 1 thread"
    )

    # On the cluster it ran on, the resumed run is exact: nothing to say.
    there = cli(
        "train", "--quiet", "--json", "--resume", "copy.ckpt", "--cluster", "3", "--max-iter", "12", "--out", "c.npz"
    )
    assert differences_of(there) == [] and "warning" not in there.stderr
