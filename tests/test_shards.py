"""Shard directories: written once, read by each worker itself, checked on the way."""

import json
import tracemalloc

import numpy as np
import pytest

from nnlearn.datasets._builtin import load_data, split
from nnlearn.datasets._shards import (
    MANIFEST,
    load_shards,
    split_by_shard,
    write_blocks,
    write_shards,
)
from nnlearn.datasets._streams import read_blocks
from nnlearn.errors import DataError, ParameterError

from .helpers import ok_json, run_cli
from .test_mnist import generated, gz, idx, malformed_cases


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


# ---------------------------------------------------------------------- nnlearn shard: files read in blocks


def shard(source, out, rows, overwrite=False):
    """What ``nnlearn shard SOURCE OUT --rows-per-shard ROWS`` writes (a data file)."""
    stream = read_blocks(source, rows)
    return write_blocks(stream.blocks, out, overwrite=overwrite, X_divisor=stream.X_divisor, source=str(source))


def computed(path):
    X, y = load_shards(path)
    return X.compute(scheduler="synchronous"), y.compute(scheduler="synchronous")


def stored(path, name="X"):
    """The arrays of a shard directory's files as written, in order."""
    files = sorted(path.glob(f"{name}-*.npy"))
    return [np.load(file) for file in files]


def test_a_float32_npz_stays_float32_and_holds_what_load_data_gives(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X, y = rng.random((103, 7), dtype=np.float32), rng.integers(0, 3, 103).astype(np.uint8)
    np.savez_compressed(tmp_path / "d.npz", X=X, y=y)
    result = ok_json(run_cli(capsys, "shard", tmp_path / "d.npz", tmp_path / "s", "--rows-per-shard", 25, "--json"))
    assert result["dtype"] == "float32" and result["shards"] == 5 and result["rows"] == 103
    assert [part.dtype for part in stored(tmp_path / "s")] == [np.float32] * 5
    np.testing.assert_array_equal(np.concatenate(stored(tmp_path / "s")), X)
    X_back, y_back = computed(tmp_path / "s")
    X_loaded, y_loaded = load_data(tmp_path / "d.npz")
    assert X_back.dtype == np.float32 and y_back.dtype == y_loaded.dtype == np.uint8
    np.testing.assert_array_equal(X_back, X_loaded)  # float64 holds every float32 exactly
    np.testing.assert_array_equal(y_back, y_loaded)


def test_npz_integers_fortran_order_and_whole_float_labels_are_read_as_load_data_reads_them(tmp_path):
    X = np.asfortranarray(np.arange(60, dtype=np.uint8).reshape(20, 3))  # stored column after column
    np.savez(tmp_path / "d.npz", X=X, y=(np.arange(20.0) % 4).reshape(20, 1))
    shard(tmp_path / "d.npz", tmp_path / "s", 6)
    assert [part.dtype for part in stored(tmp_path / "s")] == [np.uint8] * 4
    X_back, y_back = computed(tmp_path / "s")
    X_loaded, y_loaded = load_data(tmp_path / "d.npz")
    assert X_back.dtype == X_loaded.dtype == np.float64 and y_back.dtype == y_loaded.dtype == np.int64
    np.testing.assert_array_equal(X_back, X_loaded)
    np.testing.assert_array_equal(y_back, y_loaded)


def test_a_csv_file_is_read_in_blocks_of_lines_as_load_data_reads_it(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(23, 4)), rng.integers(0, 5, 23)
    lines = ["a,b,c,d,label", ""] + [",".join(str(float(v)) for v in [*row, label]) for row, label in zip(X, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines[:12] + [""] + lines[12:]) + "\n")
    result = shard(tmp_path / "d.csv", tmp_path / "s", 5)
    assert [s["rows"] for s in result["shards"]] == [5, 5, 5, 5, 3]
    X_back, y_back = computed(tmp_path / "s")
    X_loaded, y_loaded = load_data(tmp_path / "d.csv")
    assert X_back.dtype == np.float64 and y_back.dtype == y_loaded.dtype == np.int64
    np.testing.assert_array_equal(X_back, X_loaded)
    np.testing.assert_array_equal(y_back, y_loaded)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,2,3", "line 9 has 3 cells, the first row has 4"),
        ("1,x,3,0", "line 9 has a non-numeric cell"),
        ("1,nan,3,0", r"X contains NaN or infinite values \(line 9\)"),
        ("1,2,3,0.5", r"label 0.5 \(line 9\) is not a whole number"),
    ],
)
def test_a_bad_csv_line_in_a_later_block_is_named_and_nothing_is_left(tmp_path, line, message):
    rows = [f"{i},{i + 1},{i + 2},{i % 2}" for i in range(10)]
    rows[7] = line  # line 9: after the header and 7 rows, in the third block of 3
    (tmp_path / "d.csv").write_text("x1,x2,x3,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=message) as info:
        shard(tmp_path / "d.csv", tmp_path / "s", 3)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()


def test_an_idx_pair_is_sharded_as_its_bytes_and_read_back_as_load_data_reads_it(tmp_path, capsys):
    rng = np.random.default_rng(3)
    images, labels = rng.integers(0, 256, (11, 5, 4), dtype=np.uint8), rng.integers(0, 10, 11)
    (tmp_path / "t-images-idx3-ubyte.gz").write_bytes(gz(idx(images)))
    (tmp_path / "t-labels-idx1-ubyte").write_bytes(idx(labels))
    result = ok_json(
        run_cli(capsys, "shard", tmp_path / "t-images-idx3-ubyte.gz", tmp_path / "s", "--rows-per-shard", 4, "--json")
    )
    assert result["dtype"] == "uint8" and result["shards"] == 3
    assert json.loads((tmp_path / "s" / MANIFEST).read_text())["X_divisor"] == 255
    np.testing.assert_array_equal(np.concatenate(stored(tmp_path / "s")), images.transpose(0, 2, 1).reshape(11, 20))
    X_back, y_back = computed(tmp_path / "s")
    X_loaded, y_loaded = load_data(tmp_path / "t-images-idx3-ubyte.gz")
    assert X_back.dtype == np.float64 and y_back.dtype == np.int64
    np.testing.assert_array_equal(X_back, X_loaded)  # the same bits: divided as read_idx divides
    np.testing.assert_array_equal(y_back, y_loaded)
    assert load_data(tmp_path / "s")[0].dtype == np.float64


@pytest.mark.parametrize("case", list(malformed_cases()))
def test_malformed_idx_files_are_refused_as_read_idx_refuses_them(case, tmp_path):
    images, labels, word = malformed_cases()[case]
    if case == "huge-claim-in-small-gzip":  # bounded by what deflate can give, not by the memory
        word = "bytes of gzip data can hold"
    name = "bad-images-idx3-ubyte" + (".gz" if images[:2] == b"\x1f\x8b" else "")
    (tmp_path / name).write_bytes(images)
    (tmp_path / "bad-labels-idx1-ubyte").write_bytes(idx(generated("test", 4)[1]) if labels is None else labels)
    with pytest.raises(DataError, match=word) as info:
        shard(tmp_path / name, tmp_path / "s", 2)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()


def test_a_float32_mat_file_keeps_its_dtype(tmp_path):
    from scipy.io import savemat

    X = np.random.default_rng(4).random((9, 3), dtype=np.float32)
    savemat(tmp_path / "d.mat", {"X": X, "y": np.arange(1, 10) % 10 + 1})
    shard(tmp_path / "d.mat", tmp_path / "s", 4)
    X_back, y_back = computed(tmp_path / "s")
    X_loaded, y_loaded = load_data(tmp_path / "d.mat")
    assert X_back.dtype == np.float32
    np.testing.assert_array_equal(X_back, X_loaded)
    np.testing.assert_array_equal(y_back, y_loaded)


def test_a_shard_directory_is_resharded_in_place(tmp_path, data):
    write_shards(*data, tmp_path / "s", rows_per_shard=10)
    shard(tmp_path / "s", tmp_path / "s", 40, overwrite=True)
    X_dask, _ = load_shards(tmp_path / "s")
    assert X_dask.chunks[0] == (40, 40, 23)
    np.testing.assert_array_equal(X_dask.compute(scheduler="synchronous"), data[0])


def test_a_failure_midway_leaves_the_directory_it_replaces_as_it_was(tmp_path, data):
    write_shards(*data, tmp_path / "s", rows_per_shard=50)
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    X = np.random.default_rng(5).random((40, 5))
    X[33, 1] = np.inf
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(40) % 2)
    with pytest.raises(DataError, match=r"d.npz: X contains NaN or infinite values \(example 34\)"):
        shard(tmp_path / "d.npz", tmp_path / "s", 10, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before
    np.testing.assert_array_equal(computed(tmp_path / "s")[0], data[0])


def test_the_input_is_checked_before_the_output(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    result = run_cli(capsys, "shard", tmp_path / "nope.npz", tmp_path / "out")
    assert result.returncode == 2 and "nope.npz: no such file" in result.stderr
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)))
    result = run_cli(capsys, "shard", tmp_path / "d.npz", tmp_path / "out")
    assert result.returncode == 2 and "d.npz: the .npz file has no array y" in result.stderr
    result = run_cli(capsys, "shard", tmp_path / "d.npy", tmp_path / "out")
    assert result.returncode == 2 and "unsupported file type" in result.stderr


def test_sharding_an_npz_holds_a_few_shards_in_memory_not_the_file(tmp_path):
    # 100,000 x 100 float32 (40 MB) in shards of 5,000 rows (2 MB each, about 5 ms to write).
    rng = np.random.default_rng(6)
    X = rng.random((100_000, 100), dtype=np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=rng.integers(0, 10, 100_000))
    shard_bytes = 5_000 * 100 * 4
    del X
    tracemalloc.start()
    try:
        shard(tmp_path / "d.npz", tmp_path / "s", 5_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured: 3.36-3.41 MB, 1.68-1.71 shards: the block (2.0 MB), the labels, read whole
    # (0.8 MB), and a piece read from the zip or the block's isfinite (0.25-0.5 MB). Loading
    # the file whole (load_data, then write_shards) peaked at 130.8 MB, 65 shards.
    assert peak < 2 * shard_bytes, f"peak {peak:,} bytes, {peak / shard_bytes:.2f} shards"


# ---------------------------------------------------------------------- holding rows out shard by shard


@pytest.mark.parametrize("chunk_size", ["1KiB", "1GiB"])
def test_the_split_keeps_one_chunk_per_shard_whatever_dasks_chunk_size(tmp_path, chunk_size):
    import dask

    rng = np.random.default_rng(7)
    X = np.column_stack([np.arange(200.0), rng.random((200, 3))])
    y = rng.integers(0, 3, 200)
    write_shards(X, y, tmp_path / "s", rows_per_shard=50)
    X_dask, _ = load_shards(tmp_path / "s")
    with dask.config.set({"array.chunk-size": chunk_size}):
        X_train, X_test, y_train, y_test = split_by_shard(X_dask, y, 0.25, 0)
        train = np.isin(np.arange(200), split(np.arange(200), y, 0.25, 0)[0])  # the rows split() keeps
        assert X_train.chunks[0] == tuple(int(part.sum()) for part in np.split(train, 4))
        assert X_test.chunks[0] == tuple(int((~part).sum()) for part in np.split(train, 4))
        np.testing.assert_array_equal(X_train.compute(scheduler="synchronous"), X[train])
        np.testing.assert_array_equal(X_test.compute(scheduler="synchronous"), X[~train])
    np.testing.assert_array_equal(y_train, y[train])
    np.testing.assert_array_equal(y_test, y[~train])


def test_a_shard_with_no_rows_in_a_part_gives_it_no_chunk(tmp_path):
    y = np.repeat([0, 1], 20)
    write_shards(np.arange(40.0)[:, None], y, tmp_path / "s", rows_per_shard=4)  # 10 shards
    X_dask, _ = load_shards(tmp_path / "s")
    X_train, X_test, _, y_test = split_by_shard(X_dask, y, 2, 0)  # one row of each class held out
    assert len(X_test.chunks[0]) == 2 and X_test.chunks[0] == (1, 1) and len(y_test) == 2
    assert len(X_train.chunks[0]) == 10 and sum(X_train.chunks[0]) == 38
