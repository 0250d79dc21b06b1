"""Writes the notebooks in this folder from the cells below, without outputs.

    python examples/build_notebooks.py && ruff check --fix examples && ruff format examples

The notebooks are what users open; this script is how they are kept: edit a cell here,
run it, commit both. ``tests/test_notebooks.py`` executes the notebooks with nbclient.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

EXERCISE = [
    new_markdown_cell(
        "# Neural networks learning, with nnlearn\n\n"
        "The course's exercise step by step: the digits, the cost of the pretrained network, the "
        "sigmoid gradient, random initialisation, backpropagation and its gradient check, training with "
        "conjugate gradients, accuracy and the hidden units. Each step prints its result beside the "
        "course's, and stops the notebook when it leaves its tolerance. Then a step beyond the course.\n\n"
        "The digits are the 5000 MNIST digits nnlearn ships (20x20, unrolled column-major as the course's); "
        "they are not the course's own file, so the costs match the course's to about 0.01, not to the "
        "last digit."
    ),
    new_code_cell(
        "import numpy as np\n\n"
        "import nnlearn\n"
        "from nnlearn import load_digits20, load_pretrained, one_hot\n"
        "from nnlearn.reporting import plot_cost_history, plot_digits, plot_hidden_units\n\n"
        "COURSE = {'cost0': 0.287629, 'cost1': 0.383770, 'accuracy': 0.995}\n\n\n"
        "def beside(name, ours, course, tolerance):\n"
        '    """Print a result beside the course\'s; stop the notebook when it leaves the tolerance."""\n'
        "    print(f'{name}: {ours:.6f} (the course: {course:.6f}, tolerance {tolerance:g})')\n"
        "    assert abs(ours - course) <= tolerance, f'{name} left its tolerance'\n\n\n"
        "print('nnlearn', nnlearn.__version__)"
    ),
    new_markdown_cell("## 1. The digits\n\n100 of the 5000, at random (seed 0): the course's first figure."),
    new_code_cell(
        "X, y = load_digits20()\nprint(X.shape, y.shape, 'labels', np.unique(y))\nplot_digits(X, y, n=100, rng=0)"
    ),
    new_markdown_cell(
        "## 2. The cost by feedforward\n\nWith the course's pretrained weights (400-25-10), at lambda 0 and lambda 1."
    ),
    new_code_cell(
        "model = load_pretrained()\n"
        "print(model)\n"
        "beside('cost, lambda 0', model.cost(X, y, lam=0), COURSE['cost0'], 0.01)\n"
        "beside('cost, lambda 1', model.cost(X, y, lam=1), COURSE['cost1'], 0.01)\n"
        "model"
    ),
    new_markdown_cell("## 3. The sigmoid gradient\n\ng'(z) = g(z)(1 - g(z)): 0.25 at 0, the largest it gets."),
    new_code_cell(
        "g = nnlearn.sigmoid_gradient(np.array([-1, -0.5, 0, 0.5, 1]))\n"
        "print(np.round(g, 6))\n"
        "beside('sigmoid gradient at 0', float(nnlearn.sigmoid_gradient(0.0)), 0.25, 1e-15)"
    ),
    new_markdown_cell(
        "## 4. Random initialisation\n\nEach weight uniform in [-0.12, 0.12], so that the hidden "
        "units start out different from each other."
    ),
    new_code_cell(
        "thetas = nnlearn.init_random((400, 25, 10), epsilon=0.12, rng=0)\n"
        "print([t.shape for t in thetas], 'largest', max(float(np.abs(t).max()) for t in thetas))\n"
        "assert all(np.abs(t).max() <= 0.12 for t in thetas)"
    ),
    new_markdown_cell(
        "## 5. Backpropagation, and the gradient check\n\nThe gradient by backpropagation against "
        "central differences on a small network (3-5-3), lambda 0 and 1: their relative difference "
        "should be below 1e-9."
    ),
    new_code_cell(
        "_, Y = one_hot(y, model.classes)  # columns in the model's order of classes (1, ..., 9, 0)\n"
        "J, grads = nnlearn.cost_and_gradient(model.thetas, X, Y, lam=1.0)\n"
        "print('J', round(J, 6), 'gradient shapes', [g.shape for g in grads])\n"
        "for lam in (0.0, 1.0):\n"
        "    difference = nnlearn.check_gradients((3, 5, 3), lam=lam)\n"
        "    print(f'lambda {lam}: relative difference {difference:.2e}')\n"
        "    assert difference < 1e-9"
    ),
    new_markdown_cell(
        "## 6. Training\n\n400 iterations of conjugate gradients from random weights (epsilon 0.12), "
        "lambda 1: the course's settings, nnlearn's defaults."
    ),
    new_code_cell(
        "trained = nnlearn.train(X, y, optimizer='cg', max_iter=400, lam=1.0, seed=0)\n"
        "print(trained.history['n_iter'], 'iterations, final cost', round(trained.history['cost'][-1], 6))\n"
        "plot_cost_history(trained)"
    ),
    new_markdown_cell("## 7. Accuracy on the training digits\n\nThe course: about 99.5% (random starts vary by 1%)."),
    new_code_cell("beside('training accuracy', trained.score(X, y), COURSE['accuracy'], 0.01)\ntrained"),
    new_markdown_cell("## 8. What the hidden units look for\n\nEach unit's 400 input weights as a 20x20 picture."),
    new_code_cell("plot_hidden_units(trained)"),
    new_markdown_cell(
        "## 9. Beyond the course\n\n"
        "**Another activation and output.** ReLU hidden units and a softmax output, on a held-out fifth."
    ),
    new_code_cell(
        "X_train, X_test, y_train, y_test = nnlearn.split(X, y, 0.2, 0)\n"
        "course = nnlearn.train(X_train, y_train, max_iter=100)\n"
        "relu = nnlearn.train(X_train, y_train, activation='relu', output='softmax', hidden_layer_sizes=(100,), "
        "max_iter=100)\n"
        "for name, m in [('course, 100 iterations', course), ('relu/softmax, 100 units', relu)]:\n"
        "    print(f'{name}: test accuracy {m.score(X_test, y_test):.1%}')\n"
        "plot_cost_history({'sigmoid/sigmoid': course, 'relu/softmax': relu})"
    ),
    new_markdown_cell(
        "**The preset** chosen by cross-validation (`preset='best'`: 300 ReLU units, softmax, Adam on "
        "distorted copies of the digits). `EPOCHS` is its 120; the notebook's quick run in the tests "
        "sets fewer through `NNLEARN_NOTEBOOK_EPOCHS`."
    ),
    new_code_cell(
        "import os\n\n"
        "EPOCHS = int(os.environ.get('NNLEARN_NOTEBOOK_EPOCHS', 120))\n"
        "best = nnlearn.train(X_train, y_train, preset='best', max_iter=EPOCHS)\n"
        "print(f'preset best, {EPOCHS} epochs: test accuracy {best.score(X_test, y_test):.1%}')\n"
        "if EPOCHS == 120:\n"
        "    assert best.score(X_test, y_test) >= 0.97  # the preset's figure (docs/quality.md)\n"
        "best"
    ),
    new_markdown_cell(
        "**A learning curve**: training and validation accuracy as the training set grows "
        "(the course's ex5 figure, for this network)."
    ),
    new_code_cell(
        "import warnings\n\n"
        "from sklearn.exceptions import ConvergenceWarning\n\n"
        "from nnlearn.reporting import CurveSettings, plot_learning_curve\n\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', ConvergenceWarning)  # 50 iterations each: a sketch, not converged\n"
        "    settings = CurveSettings(cv=3, max_iter=50)\n"
        "    curve = plot_learning_curve(X_train[::4], y_train[::4], train_sizes=(0.25, 0.5, 1.0), settings=settings)\n"
        "curve"
    ),
]

PIPELINE = [
    new_markdown_cell(
        "# nnlearn's estimator in a scikit-learn pipeline\n\n"
        "`NeuralNetClassifier` is a scikit-learn estimator: it goes in a `Pipeline`, and `GridSearchCV` "
        "chooses its settings by cross-validation. Here on scikit-learn's 8x8 digits."
    ),
    new_code_cell(
        "import warnings\n\n"
        "from sklearn.exceptions import ConvergenceWarning\n"
        "from sklearn.model_selection import GridSearchCV, train_test_split\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import MinMaxScaler\n\n"
        "from nnlearn import NeuralNetClassifier, load_digits8\n\n"
        "warnings.simplefilter('ignore', ConvergenceWarning)  # short fits, on purpose\n"
        "X, y = load_digits8()\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)\n"
        "pipeline = make_pipeline(MinMaxScaler(), NeuralNetClassifier(max_iter=100, random_state=0))\n"
        "pipeline"
    ),
    new_code_cell(
        "search = GridSearchCV(\n"
        "    pipeline,\n"
        "    {\n"
        "        'neuralnetclassifier__lam': [0.1, 1.0, 3.0],\n"
        "        'neuralnetclassifier__hidden_layer_sizes': [(25,), (50,)],\n"
        "    },\n"
        "    cv=3,\n"
        ")\n"
        "search.fit(X_train, y_train)\n"
        "print('chosen', search.best_params_, f'cross-validated {search.best_score_:.1%}')\n"
        "print(f'test accuracy {search.score(X_test, y_test):.1%}')\n"
        "assert search.score(X_test, y_test) > 0.9"
    ),
    new_markdown_cell("The fitted network shows its training below scikit-learn's parameter box:"),
    new_code_cell("search.best_estimator_[-1]"),
    new_markdown_cell(
        "With `verbose=True` a fit shows its progress: a bar in Jupyter, a line per iteration elsewhere."
    ),
    new_code_cell("NeuralNetClassifier(max_iter=30, verbose=True).fit(MinMaxScaler().fit_transform(X_train), y_train)"),
]


def write(name, cells):
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    write("neural-networks-learning.ipynb", EXERCISE)
    write("scikit-learn-pipeline.ipynb", PIPELINE)
