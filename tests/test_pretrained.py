"""The course's pretrained weights on the embedded digits: the notebook's known numbers."""

import numpy as np
import pytest

from nnlearn import load_octave_model
from nnlearn.model._octave import load_pretrained


@pytest.fixture(scope="module")
def pretrained():
    return load_pretrained()


def test_load_pretrained_is_the_shipped_file(pretrained, ex4weights):
    from_file = load_octave_model(ex4weights)
    np.testing.assert_array_equal(pretrained.classes, from_file.classes)
    for a, b in zip(pretrained.thetas, from_file.thetas, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "pretrained" in pretrained.history["source"]


def test_output_unit_ten_stands_for_digit_zero(pretrained):
    np.testing.assert_array_equal(pretrained.classes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
    assert pretrained.layer_sizes == (400, 25, 10)
    assert pretrained.network.is_course


def test_accuracy_on_the_embedded_digits(pretrained, digits20):
    X, y = digits20
    # data/README.md: 97.60% on the bicubic 20x20 MNIST digits (the course states ~97.5%).
    assert pretrained.score(X, y) == 0.976


@pytest.mark.parametrize("lam, course_cost", [(0.0, 0.287629), (1.0, 0.383770)])
def test_cost_is_close_to_the_courses(pretrained, digits20, lam, course_cost):
    X, y = digits20
    assert pretrained.cost(X, y, lam=lam) == pytest.approx(course_cost, abs=0.01)


@pytest.mark.parametrize("lam, measured", [(0.0, 0.283663), (1.0, 0.379804)])
def test_cost_matches_the_figures_measured_on_this_data(pretrained, digits20, lam, measured):
    X, y = digits20
    assert pretrained.cost(X, y, lam=lam) == pytest.approx(measured, abs=5e-7)


def test_row_major_unrolling_would_be_wrong(pretrained, digits20):
    # The weights expect column-major images: transposing every image ruins them.
    X, y = digits20
    X_row_major = X.reshape(-1, 20, 20).transpose(0, 2, 1).reshape(-1, 400)
    assert pretrained.score(X_row_major, y) < 0.5
