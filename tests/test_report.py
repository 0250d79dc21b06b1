"""nnlearn.reporting._report and the command line's pictures: pages that refer only to images that exist."""

import base64
import contextlib
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import nnlearn
from nnlearn.persist._atomic import OutputExistsError
from nnlearn.reporting._report import FIGURES, most_confidently_wrong, write_report

DEPTHS = {1: (16,), 2: (16, 12), 3: (16, 12, 8)}
PNG = b"\x89PNG\r\n\x1a\n"


class ImageSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src"))


def image_sources(index):
    parser = ImageSources()
    parser.feed(Path(index).read_text(encoding="utf-8"))
    return parser.sources


def assert_images_exist(index):
    """Every <img> of the page is a PNG file beside it or a PNG data URI; returns the sources."""
    sources = image_sources(index)
    for src in sources:
        assert src, "an <img> without src"
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
        else:
            path = Path(index).parent / src
            assert path.is_file(), f"the page refers to {src}, which does not exist"
            assert path.read_bytes().startswith(PNG), f"{src} is not a PNG file"
    return sources


@pytest.fixture(scope="module")
def data():
    X, y = nnlearn.load_digits8()
    return nnlearn.split(X[:500], y[:500], test_size=0.3, seed=0)


@pytest.fixture(scope="module")
def models(data):
    X_train, _, y_train, _ = data
    return {
        depth: nnlearn.train(X_train, y_train, hidden_layer_sizes=hidden, optimizer="lbfgs", max_iter=20, seed=0)
        for depth, hidden in DEPTHS.items()
    }


@pytest.fixture(scope="module")
def model(models):
    return models[1]


@pytest.mark.parametrize("depth", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_report_refers_only_to_images_that_exist(tmp_path, models, data, depth):
    X_train, X_test, y_train, y_test = data
    model = models[depth]
    index = write_report(
        model,
        tmp_path / "report",
        X_test,
        y_test,
        training=(X_train, y_train),
        settings={"data": "digits8", "max_iter": 20},
    )
    assert index == tmp_path / "report" / "index.html"
    assert sorted(assert_images_exist(index)) == sorted(FIGURES)
    page = index.read_text(encoding="utf-8")
    accuracy = f"{model.score(X_test, y_test):.2%}"
    assert accuracy in page and f"{model.score(X_train, y_train):.2%}" in page
    assert " - ".join(map(str, model.layer_sizes)) in page
    assert "<th>precision</th>" in page and "digits8" in page


@pytest.mark.slow
def test_report_refuses_to_overwrite_and_leaves_no_temporary_files(tmp_path, model, data):
    _, X_test, _, y_test = data
    index = write_report(model, tmp_path, X_test, y_test)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(OutputExistsError, match="index.html"):
        write_report(model, tmp_path, X_test, y_test)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    write_report(model, tmp_path, X_test, y_test, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["index.html", *FIGURES])
    assert_images_exist(index)


def test_report_escapes_what_the_user_gives(tmp_path, model, data):
    _, X_test, _, y_test = data
    index = write_report(model, tmp_path, X_test, y_test, settings={"<script>alert(1)</script>": "a & <b>"})
    page = index.read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; &lt;b&gt;" in page


def test_report_on_features_that_are_not_images(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10))
    y = (X[:, 0] > 0).astype(int)
    model = nnlearn.train(X, y, hidden_layer_sizes=(3,), optimizer="lbfgs", max_iter=10, seed=0)
    index = write_report(model, tmp_path, X, y)
    sources = assert_images_exist(index)
    assert "digits.png" not in sources and "hidden-units.png" not in sources
    assert "not a square image" in index.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_stale_image_is_removed_with_overwrite(tmp_path, data):
    X_train, X_test, y_train, y_test = data
    thetas = nnlearn.init_random((64, 5, 10), rng=0)
    untrained = nnlearn.Model(thetas, np.arange(10))  # no history: no cost figure
    write_report(nnlearn.train(X_train, y_train, hidden_layer_sizes=(5,), max_iter=5), tmp_path, X_test, y_test)
    index = write_report(untrained, tmp_path, X_test, y_test, overwrite=True)
    assert "cost.png" not in assert_images_exist(index)
    assert not (tmp_path / "cost.png").exists()


def test_most_confidently_wrong(model, data):
    _, X_test, _, y_test = data
    index, confidence = most_confidently_wrong(model, X_test, y_test, k=5)
    proba = model.predict_proba(X_test)
    assert np.all(model.predict(X_test[index]) != y_test[index])
    np.testing.assert_allclose(confidence, proba[index].max(axis=1))
    assert np.all(np.diff(confidence) <= 0)
    wrong = model.predict(X_test) != y_test
    assert confidence[0] == pytest.approx(proba[wrong].max(axis=1).max())


# The command line (nnlearn.cli) wires these verbs to nnlearn.reporting._plots and nnlearn.reporting.


def run_cli(*args, cwd):
    """``nnlearn ARGS`` in this process, in ``cwd``; it must succeed."""
    from nnlearn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in args])
    assert status == 0, f"nnlearn {' '.join(map(str, args))} failed:\n{err.getvalue()}"
    return out.getvalue()


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    run_cli(
        "train",
        "--data",
        "digits8",
        "--hidden",
        "12",
        "--max-iter",
        "10",
        "--optimizer",
        "lbfgs",
        "--quiet",
        "--out",
        folder / "model.npz",
        "--report",
        folder / "train-report",
        cwd=folder,
    )
    return folder / "model.npz"


def test_cli_train_writes_a_report(cli_model):
    assert cli_model.exists()
    assert_images_exist(cli_model.parent / "train-report" / "index.html")


def test_cli_report(cli_model, tmp_path):
    run_cli("report", cli_model, "--data", "digits8", tmp_path / "report", cwd=tmp_path)
    assert sorted(assert_images_exist(tmp_path / "report" / "index.html")) == sorted(FIGURES)


def test_cli_show_digits_and_hidden_units(cli_model, tmp_path):
    run_cli("show", "--data", "digits8", "--out", tmp_path / "digits.png", cwd=tmp_path)
    run_cli("show", cli_model, "--out", tmp_path / "hidden.png", cwd=tmp_path)
    for name in ("digits.png", "hidden.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)


def test_training_data_are_named_as_such(tmp_path, model, data):
    from nnlearn.reporting._report import _numbers

    X_train, _, y_train, _ = data
    index = write_report(model, tmp_path, X_train, y_train, training=(X_train, y_train), data_role="training")
    page = index.read_text(encoding="utf-8")
    assert "<td>training examples (no held-out part)</td>" in page and "test" not in page.lower()
    assert page.count("training accuracy") == 1  # not listed twice
    assert "Per class (training data)" in page and "100 training digits" in page
    rows = dict(_numbers(model, X_train, y_train, model.predict(X_train), None, None, "other"))
    assert "evaluation accuracy" in rows and not any("test" in name for name in rows)
    with pytest.raises(ValueError, match="data_role"):
        write_report(model, tmp_path / "bad", X_train, y_train, data_role="held-out")


@pytest.mark.slow
def test_an_unfinished_report_is_replaced_without_overwrite(tmp_path, model, data, monkeypatch):
    import nnlearn.reporting._report

    _, X_test, _, y_test = data
    real = nnlearn.reporting._report.save_figure

    def killed_at_the_third(fig, path, overwrite=False):
        if Path(path).name == "cost.png":
            raise KeyboardInterrupt  # as if the process were stopped there
        return real(fig, path, overwrite)

    monkeypatch.setattr(nnlearn.reporting._report, "save_figure", killed_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        write_report(model, tmp_path, X_test, y_test)
    assert (tmp_path / "digits.png").exists() and not (tmp_path / "index.html").exists()
    assert nnlearn.reporting._report.report_clashes(tmp_path) == []
    monkeypatch.setattr(nnlearn.reporting._report, "save_figure", real)
    index = write_report(model, tmp_path, X_test, y_test)  # no overwrite needed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["index.html", *FIGURES])
    assert_images_exist(index)
    # Files of the report's names that no unfinished report left are the user's.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "cost.png").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="cost.png"):
        write_report(model, tmp_path / "elsewhere", X_test, y_test)


def test_a_special_file_is_never_replaced_by_a_report(tmp_path, model, data):
    import os

    from nnlearn.persist._atomic import SpecialFileError

    _, X_test, _, y_test = data
    os.mkfifo(tmp_path / "wrong.png")
    with pytest.raises(SpecialFileError, match="wrong.png"):
        write_report(model, tmp_path, X_test, y_test, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong.png"]
