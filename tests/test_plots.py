"""nnlearn.reporting._plots: every figure for networks of 1-3 hidden layers, and images upright."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import nnlearn
from nnlearn import reporting as plots
from nnlearn.errors import ParameterError, ShapeError
from nnlearn.persist._atomic import OutputExistsError
from nnlearn.reporting import _curves as curves

DEPTHS = {1: (16,), 2: (16, 12), 3: (16, 12, 8)}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits8():
    X, y = nnlearn.load_digits8()
    return X[:400], y[:400]


@pytest.fixture(scope="module", params=sorted(DEPTHS), ids=lambda d: f"{d}-hidden")
def trained(request, digits8):
    X, y = digits8
    model = nnlearn.train(X, y, hidden_layer_sizes=DEPTHS[request.param], optimizer="lbfgs", max_iter=20, seed=0)
    return model, X, y


def letter_l(side=20):
    """An upright "L": a bar down the left side and a foot along the bottom."""
    image = np.zeros((side, side))
    image[:, 2:6] = 1.0
    image[side - 5 : side - 1, 2 : side - 2] = 1.0
    return image


def rendered_gray(fig, ax, origin, row, col):
    """Grey level 0-255 on screen of image pixel (row, col) of the tile at ``origin``."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    x, y = ax.transData.transform((origin[1] + col, origin[0] + row))
    # Display y grows upwards; the buffer's rows run downwards from the top.
    return rgba[int(rgba.shape[0] - y), int(x), :3].mean()


def assert_upright_l(fig, ax, origin):
    bright = [(8, 3), (17, 3), (17, 15)]  # the bar, the corner, the foot's end
    dark = [(4, 15), (8, 12)]  # top right: bright there if transposed or flipped either way
    for row, col in bright:
        assert rendered_gray(fig, ax, origin, row, col) > 180, f"pixel ({row}, {col}) of the L should be bright"
    for row, col in dark:
        assert rendered_gray(fig, ax, origin, row, col) < 80, f"pixel ({row}, {col}) should be dark: image not upright"


def test_digit_tiles_are_upright():
    x = letter_l().ravel(order="F")  # unrolled as the datasets are
    fig = plots.plot_digits(x[None, :])
    assert_upright_l(fig, fig.axes[0], origin=(1, 1))


@pytest.mark.parametrize("wrong_way", [np.transpose, np.flipud, np.fliplr, np.rot90], ids=lambda f: f.__name__)
def test_the_upright_check_catches_an_image_the_wrong_way_round(wrong_way):
    x = wrong_way(letter_l()).ravel(order="F")
    fig = plots.plot_digits(x[None, :])
    with pytest.raises(AssertionError, match="should be"):
        assert_upright_l(fig, fig.axes[0], origin=(1, 1))


def test_hidden_unit_tiles_are_upright():
    thetas = nnlearn.init_random((400, 4, 3), rng=0)
    thetas[0][0, 1:] = letter_l().ravel(order="F") - 0.5  # unit 1 looks for an L
    fig = plots.plot_hidden_units(nnlearn.Model(thetas, np.arange(3)))
    assert_upright_l(fig, fig.axes[0], origin=(1, 1))


def test_digits_figure(trained):
    model, X, y = trained
    predicted = model.predict(X)
    fig = plots.plot_digits(X, labels=y, predictions=predicted, n=49, rng=3, title="digits")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.images[0].get_array().shape == (7 * 9 + 1, 7 * 9 + 1)  # 7 x 7 tiles of 8 + 1 gap
    fig.canvas.draw()


def test_wrong_predictions_are_framed_and_read_predicted_over_true():
    X, y = nnlearn.load_digits8()
    predicted = y.copy()[:9]
    predicted[[2, 5]] = (y[[2, 5]] + 1) % 10
    fig = plots.plot_digits(X[:9], labels=y[:9], predictions=predicted)
    ax = fig.axes[0]
    frames = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(frames) == 2
    texts = [t.get_text() for t in ax.texts]
    assert f"{predicted[2]}/{y[2]}" in texts and f"{predicted[5]}/{y[5]}" in texts
    assert "2 of 9 wrong" in ax.get_title()


def test_digits_picks_n_at_random_reproducibly(digits8):
    X, y = digits8
    arrays = [plots.plot_digits(X, y, n=16, rng=seed).axes[0].images[0].get_array() for seed in (5, 5, 6)]
    assert arrays[0].shape == (4 * 9 + 1, 4 * 9 + 1)
    np.testing.assert_array_equal(arrays[0], arrays[1])
    assert not np.array_equal(arrays[0], arrays[2])


def test_bad_digit_inputs_are_refused():
    X = np.zeros((3, 16))
    with pytest.raises(ShapeError, match="2 labels for 3 images"):
        plots.plot_digits(X, labels=[1, 2])
    with pytest.raises(ParameterError, match="nothing to show"):
        plots.plot_digits(X, n=0)


def test_non_square_images_are_refused():
    with pytest.raises(ShapeError, match="not a square image"):
        plots.plot_digits(np.zeros((3, 10)))
    model = nnlearn.Model(nnlearn.init_random((10, 3, 2), rng=0), np.arange(2))
    with pytest.raises(ShapeError, match="not a square image"):
        plots.plot_hidden_units(model)


def test_hidden_units_figure(trained):
    model, _, _ = trained
    fig = plots.plot_hidden_units(model)
    units = model.thetas[0].shape[0]
    ncols = int(np.ceil(np.sqrt(units)))
    nrows = int(np.ceil(units / ncols))
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (nrows * 9 + 1, ncols * 9 + 1)
    first = model.thetas[0][0, 1:].reshape(8, 8, order="F")
    np.testing.assert_allclose(grid[1:9, 1:9], first / np.abs(first).max())
    assert f"{units} units" in fig._suptitle.get_text()
    fig.canvas.draw()


def test_cost_history_figure(trained):
    model, _, _ = trained
    fig = plots.plot_cost_history(model)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), model.history["cost"])
    assert "lbfgs" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig.canvas.draw()


def test_cost_history_overlays_labelled_runs(trained):
    model, _, _ = trained
    for runs, labels in [
        ({"a": model, "b": [3.0, 2.0, 1.0]}, None),
        ([model, model], ["x", "y"]),
        ([[3.0, 2.0], [4.0, 1.0, 0.5]], ["x", "y"]),
    ]:
        legend = plots.plot_cost_history(runs, labels).axes[0].get_legend()
        names = [text.get_text().split(":")[0] for text in legend.get_texts()]
        assert names == (labels or list(runs))
    with pytest.raises(ParameterError, match="2 labels for 1 runs"):
        plots.plot_cost_history(model, labels=["a", "b"])


def test_confusion_matrix_figure(trained):
    model, X, y = trained
    fig = plots.plot_confusion_matrix(y, model.predict(X), classes=model.classes)
    counts = fig.axes[0].images[0].get_array()
    assert counts.shape == (10, 10) and counts.sum() == len(y)
    assert np.trace(counts) == np.sum(model.predict(X) == y)
    fig.canvas.draw()


def quiet_mlp(hidden):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=hidden, max_iter=30, random_state=0)


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_learning_and_validation_curves(digits8, depth):
    X, y = digits8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny MLPs stop before converging, on purpose
        fig = curves.plot_learning_curve(
            X, y, estimator=quiet_mlp(DEPTHS[depth]), train_sizes=[0.3, 1.0], settings=curves.CurveSettings(cv=3)
        )
        (train, valid) = fig.axes[0].get_lines()[:2]
        assert len(train.get_xdata()) == 2 and train.get_xdata()[-1] == 266  # 2/3 of 400 train
        assert np.all(valid.get_ydata() >= 0) and np.all(valid.get_ydata() <= 1)
        fig = curves.plot_validation_curve(
            X,
            y,
            lams=(0.0, 0.1, 10.0),
            estimator=quiet_mlp(DEPTHS[depth]),
            param_name="alpha",
            settings=curves.CurveSettings(cv=3),
        )
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [0.0, 0.1, 10.0]
    assert "best lambda" in fig.axes[0].get_legend().get_texts()[-1].get_text()
    fig.canvas.draw()


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_curves_with_the_default_estimator(digits8, depth):
    from nnlearn import estimator

    X, y = digits8
    make = lambda: estimator.NeuralNetClassifier(hidden_layer_sizes=DEPTHS[depth], max_iter=10, random_state=0)
    fig = curves.plot_learning_curve(
        X, y, estimator=make(), train_sizes=[0.5, 1.0], settings=curves.CurveSettings(cv=2)
    )
    assert len(fig.axes[0].get_lines()) == 2
    fig = curves.plot_validation_curve(X, y, lams=(0.0, 1.0), estimator=make(), settings=curves.CurveSettings(cv=2))
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [0.0, 1.0]
    if depth == 1:  # estimator=None builds the default NeuralNetClassifier
        fig = curves.plot_learning_curve(
            X[:200], y[:200], train_sizes=[1.0], settings=curves.CurveSettings(cv=2, max_iter=5)
        )
        assert len(fig.axes[0].get_lines()) == 2


def test_save_figure_writes_png_and_refuses_to_overwrite(tmp_path):
    fig = plots.plot_cost_history([3.0, 2.0, 1.5])
    path = plots.save_figure(fig, tmp_path / "cost.png")
    assert path.read_bytes().startswith(PNG)
    with pytest.raises(OutputExistsError):
        plots.save_figure(fig, path)
    plots.save_figure(fig, path, overwrite=True)
    assert plots.save_figure(fig, tmp_path / "cost.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ParameterError, match="cannot write .xyz"):
        plots.save_figure(fig, tmp_path / "cost.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cost.png", "cost.svg"]  # no temporary files left


def test_import_draws_nothing_and_leaves_pyplot_alone():
    code = "import sys, nnlearn.reporting._plots, nnlearn.reporting._report; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
