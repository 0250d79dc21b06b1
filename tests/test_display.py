"""What Jupyter shows of a model and of a fitted estimator (nnlearn.model._display), and
what a verbose fit prints outside a notebook."""

from __future__ import annotations

import re

from nnlearn import NeuralNetClassifier, load_digits8, train
from nnlearn.model import load_pretrained


def test_a_model_shows_its_network_training_and_cost_curve():
    X, y = load_digits8()
    model = train(X, y, hidden_layer_sizes=(12,), max_iter=15, early_stopping=True)
    html = model._repr_html_()
    assert "64-12-10 (" in html and "sigmoid / sigmoid" in html and "cg" in html
    assert re.search(r"iterations</th><td[^>]*>15 of 15<", html), html
    assert "final cost" in html and "best held-out accuracy" in html
    points = re.search(r'<polyline [^>]*points="([^"]+)"', html).group(1).split()
    assert len(points) == 15  # one per iteration
    assert "<script" not in html


def test_the_course_s_weights_show_without_a_training_record():
    html = load_pretrained()._repr_html_()
    assert "400-25-10 (10,285 weights)" in html and "<polyline" not in html and "final cost" not in html


def test_a_fitted_estimator_shows_its_network_below_scikit_learn_s_box():
    X, y = load_digits8()
    unfitted = NeuralNetClassifier(max_iter=5)
    assert "nnlearn model" not in unfitted._repr_html_()
    html = unfitted.fit(X, y)._repr_html_()
    assert html.index("NeuralNetClassifier") < html.index("nnlearn model")
    assert "n_iter_" in html and "<polyline" in html


def test_a_verbose_fit_prints_a_line_per_iteration_outside_a_notebook(capsys):
    X, y = load_digits8()
    NeuralNetClassifier(max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]
