"""The notebooks in examples/ run from top to bottom in a Jupyter kernel (nbclient).

Each notebook checks its own figures against the course's as it goes (a cell fails when
one leaves its tolerance); these tests run them and check what Jupyter shows: figures as
PNG, models as HTML, a verbose fit as tqdm's notebook bar. The exercise's preset runs a
few epochs here, its full 120 in the slow tier.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).parent.parent / "examples"


def execute(name, tmp_path, **env):
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def shown(cell):
    """The MIME types a code cell's outputs show."""
    return {kind for output in cell.outputs for kind in output.get("data", {})}


def cell_with(notebook, text):
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and text in cell.source)


def test_the_exercise_runs_and_shows_its_figures_and_models(tmp_path):
    notebook = execute("neural-networks-learning.ipynb", tmp_path, NNLEARN_NOTEBOOK_EPOCHS="3")
    for call in ("plot_digits(", "plot_cost_history(trained)", "plot_hidden_units(", "curve\n"):
        assert "image/png" in shown(cell_with(notebook, call)), call
    assert "text/html" in shown(cell_with(notebook, "model = load_pretrained()"))
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "cost, lambda 1: 0.3798" in printed and "(the course: 0.383770" in printed
    assert "relative difference" in printed and "preset best, 3 epochs" in printed
    assert "Traceback" not in printed


@pytest.mark.slow  # the preset at its size: 120 epochs of 300 units on 16,000 distorted copies
def test_the_exercise_trains_the_preset_to_its_figure(tmp_path):
    notebook = execute("neural-networks-learning.ipynb", tmp_path, NNLEARN_NOTEBOOK_EPOCHS="120")
    preset = cell_with(notebook, "NNLEARN_NOTEBOOK_EPOCHS")
    text = "".join(o.get("text", "") for o in preset.outputs)
    assert "preset best, 120 epochs: test accuracy 97." in text, text


def test_the_pipeline_notebook_searches_and_shows_a_bar_in_jupyter(tmp_path):
    notebook = execute("scikit-learn-pipeline.ipynb", tmp_path)
    assert "text/html" in shown(cell_with(notebook, "search.best_estimator_[-1]"))
    html = "".join(o["data"].get("text/html", "") for o in cell_with(notebook, "best_estimator_").outputs)
    assert "nnlearn model" in html and "<polyline" in html  # below scikit-learn's box
    verbose = cell_with(notebook, "verbose=True")
    assert "application/vnd.jupyter.widget-view+json" in shown(verbose)  # tqdm's notebook bar
    assert "Iteration 1, cost" not in "".join(o.get("text", "") for o in verbose.outputs)
