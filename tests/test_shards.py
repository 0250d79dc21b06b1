"""Shard directories: written once, read by each worker itself, checked on the way."""

import json

import numpy as np
import pytest

from nnlearn.datasets._shards import MANIFEST, load_shards, write_shards
from nnlearn.errors import DataError, ParameterError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((103, 5)), rng.integers(0, 4, 103)


def test_shards_round_trip_in_chunks_of_the_given_rows(tmp_path, data):
    X, y = data
    write_shards(X, y, tmp_path / "s", rows_per_shard=25)
    X_dask, y_dask = load_shards(tmp_path / "s")
    assert X_dask.chunks[0] == (25, 25, 25, 25, 3) and X_dask.chunks[1] == (5,)
    np.testing.assert_array_equal(X_dask.compute(scheduler="synchronous"), X)
    np.testing.assert_array_equal(y_dask.compute(scheduler="synchronous"), y)
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert [shard["rows"] for shard in manifest["shards"]] == [25, 25, 25, 25, 3]


def test_an_altered_shard_is_refused_when_read(tmp_path, data):
    write_shards(*data, tmp_path / "s", rows_per_shard=50)
    X_dask, _ = load_shards(tmp_path / "s")
    shard = tmp_path / "s" / "X-00001.npy"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="X-00001.npy: does not match its checksum"):
        X_dask.compute(scheduler="synchronous")


def test_an_existing_directory_is_never_replaced(tmp_path, data):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(DataError, match="not a shard directory, so it is never replaced"):
        write_shards(*data, tmp_path / "mine", rows_per_shard=10, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    write_shards(*data, tmp_path / "s", rows_per_shard=10)
    with pytest.raises(DataError, match="already exists"):
        write_shards(*data, tmp_path / "s", rows_per_shard=10)
    write_shards(*data, tmp_path / "s", rows_per_shard=50, overwrite=True)
    assert load_shards(tmp_path / "s")[0].chunks[0] == (50, 50, 3)


@pytest.mark.parametrize("rows", [0, -3, 2.5, True])
def test_rows_per_shard_must_be_a_positive_integer(tmp_path, data, rows):
    with pytest.raises(ParameterError, match="rows_per_shard"):
        write_shards(*data, tmp_path / "s", rows_per_shard=rows)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(layout="something"), "not an nnlearn shard manifest"),
        (lambda m: m.update(version=99), "shard layout version 99"),
        (lambda m: m["shards"][0]["X"].update(file="../../etc/passwd"), "a shard entry is malformed"),
        (lambda m: m["shards"][0].update(rows=-1), "a shard entry is malformed"),
        (lambda m: m.update(X_dtype="bogus"), "X_dtype 'bogus' is not a dtype shards hold"),
        (lambda m: m.update(y_dtype="O"), "y_dtype 'O' is not a dtype shards hold"),
        (lambda m: m["shards"].__setitem__(0, ["not", "a", "dict"]), "a shard entry is malformed"),
    ],
)
def test_a_bad_manifest_is_one_data_error(tmp_path, data, edit, message):
    write_shards(*data, tmp_path / "s", rows_per_shard=50)
    manifest_path = tmp_path / "s" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=message):
        load_shards(tmp_path / "s")


def test_mismatched_or_empty_data_are_refused(tmp_path):
    with pytest.raises(DataError):
        write_shards(np.zeros((4, 2)), np.zeros(3), tmp_path / "a", rows_per_shard=2)
    with pytest.raises(DataError):
        write_shards(np.zeros((0, 2)), np.zeros(0), tmp_path / "b", rows_per_shard=2)


def test_replacing_a_shard_directory_leaves_no_old_shard(tmp_path, data):
    write_shards(*data, tmp_path / "s", rows_per_shard=10)  # 11 shards
    write_shards(*data, tmp_path / "s", rows_per_shard=50, overwrite=True)  # 3 shards
    names = {p.name for p in (tmp_path / "s").iterdir()}
    assert names == {MANIFEST, *(f"{kind}-0000{i}.npy" for kind in "Xy" for i in range(3))}
