"""Files nobody vouches for: weights, models, checkpoints and data that are FIFOs or
devices, and archives that claim far more than they hold.

A FIFO opened for reading blocks until a writer comes and /dev/zero never ends, so every
verb that reads a weights file must refuse them before opening them. A few megabytes of
deflated zeros can inflate to gigabytes, so an archive is judged by its members' headers
before anything is inflated. Every case here runs under a deadline: a hang fails it.
"""

import io
import os
import struct
import time
import tracemalloc
import zipfile
import zlib
from contextlib import contextmanager

import numpy as np
import pytest

from nnlearn import Model, init_random, load_digits8
from nnlearn.errors import DataError, ModelFileError
from nnlearn.model._model import MAX_ARRAY_BYTES, load_model
from nnlearn.model._octave import read_octave_weights
from nnlearn.persist._reading import read_npz
from nnlearn.training._checkpoints import load_checkpoint

from .helpers import EX4WEIGHTS, assert_one_line_error, deadline, ok_json, run_cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


@contextmanager
def bounded(seconds, megabytes):
    """Fail unless the block ends within ``seconds`` and its allocations (NumPy's arrays
    and Python's objects, as tracemalloc sees them) stay under ``megabytes``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with deadline(seconds):
            yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < megabytes * 2**20, f"{peak / 2**20:.0f} MB allocated"
    assert time.perf_counter() - start < seconds


# ------------------------------------------------------------- crafted .npz archives


def npy_header(shape, dtype="<f8", fortran=False):
    """The bytes np.save writes before an array's data: what a reader believes."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": fortran, "shape": tuple(shape)})
    return out.getvalue()


def write_zip(path, members, stated=None):
    """A deflated zip of ``members`` (name: bytes); ``stated`` maps a name to the
    uncompressed size its local and central headers claim instead of the true one."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    if stated:
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        central = data.find(b"PK\x01\x02")
        for info in infos:
            if info.filename in stated:
                struct.pack_into("<I", data, info.header_offset + 22, stated[info.filename])
                struct.pack_into("<I", data, central + 24, stated[info.filename])
            name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, central + 28)
            central += 46 + name_length + extra_length + comment_length
        path.write_bytes(bytes(data))
    return path


def bomb(path, shape=(100_000, 100_000), zeros=4 * 2**20, honest_directory=False, name="theta1.npy"):
    """An .npz member whose header claims ``shape`` float64 followed by ``zeros`` bytes of
    zeros: a few kilobytes deflated. With ``honest_directory`` the zip's directory states
    the size the header claims, so only the claim itself can give it away."""
    header = npy_header(shape)
    stated = None
    if honest_directory:
        stated = {name: len(header) + int(np.prod(shape, dtype=object)) * 8}
    return write_zip(path, {name: header + bytes(zeros)}, stated)


def test_a_header_claiming_far_more_than_the_member_holds_is_refused_before_inflating(tmp_path):
    path = bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < 100_000
    with bounded(5, 20), pytest.raises(DataError, match=r"theta1.*header claims 80,000,000,000 bytes.*refused"):
        read_npz(path, DataError)


def test_a_claim_beyond_the_bound_is_refused_on_the_headers_alone(tmp_path):
    # 20000 x 20000 float64, the reviewer's 3.2 GB: the directory agrees with the header,
    # and the data are not even there: reading any of them would fail otherwise.
    path = bomb(tmp_path / "bomb.npz", shape=(20_000, 20_000), zeros=2**20, honest_directory=True)
    with bounded(5, 20), pytest.raises(ModelFileError) as error:
        load_model(path)
    assert str(error.value).endswith(
        "its arrays claim 3,200,000,000 bytes or more (array 'theta1': 3,200,000,000), more than a model file is "
        "read with (2,147,483,648 at most); refused"
    )
    with bounded(5, 20), pytest.raises(DataError, match=r"more than a .npz file is read with \(1,000,000 at most\)"):
        read_npz(path, DataError, max_bytes=10**6)


def test_the_bound_counts_every_member_together(tmp_path):
    arrays = {f"a{i}": np.zeros(1000) for i in range(3)}  # 8,000 bytes each
    np.savez_compressed(tmp_path / "three.npz", **arrays)
    assert sorted(read_npz(tmp_path / "three.npz", DataError, max_bytes=24_000)) == ["a0", "a1", "a2"]
    with pytest.raises(DataError, match=r"claim 24,000 bytes or more \(array 'a2': 8,000\).*\(20,000 at most\)"):
        read_npz(tmp_path / "three.npz", DataError, max_bytes=20_000)


def test_an_oversized_meta_is_refused_before_it_is_inflated(tmp_path):
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]))
    with zipfile.ZipFile(model.save(tmp_path / "m.npz")) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    # 2**26 + 1 characters of 4 bytes, stated alike by header and directory; a few bytes there.
    header = npy_header((), dtype=f"<U{2**26 + 1}")
    members["meta.npy"] = header + bytes(1000)
    write_zip(tmp_path / "big-meta.npz", members, {"meta.npy": len(header) + 4 * (2**26 + 1)})
    with bounded(5, 20), pytest.raises(ModelFileError, match=r"array 'meta' holds 268,435,460 bytes, more than a"):
        load_model(tmp_path / "big-meta.npz")


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ({"x.npy": npy_header((3,), "|O") + bytes(24)}, "object arrays"),
        ({"x.npy": b"not an array at all"}, "not a NumPy .npy array"),
        ({"x.npy": npy_header((-1, 3)) + bytes(8)}, "negative shape"),
        ({"x.npy": npy_header((3,), "|V0")}, "empty type"),
        ({"notes.txt": b"hello"}, "'notes.txt', which is not a NumPy array"),
        ({"x.npy": npy_header((2,)) + bytes(8)}, "ends before its data does"),
        ({"x.npy": npy_header((2,)) + bytes(1000)}, "header claims 16 bytes"),
    ],
)
def test_members_that_are_not_plain_arrays_are_refused(tmp_path, members, words):
    path = write_zip(tmp_path / "odd.npz", members)
    with pytest.raises(DataError) as error:
        read_npz(path, DataError)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and words in message and message.endswith("refused"), message


def test_a_member_whose_data_end_early_is_refused(tmp_path):
    # Header and directory agree on 8 numbers; the deflated data hold 2.
    header = npy_header((8,))
    path = write_zip(tmp_path / "short.npz", {"x.npy": header + bytes(16)}, {"x.npy": len(header) + 64})
    with pytest.raises(DataError, match="x"):
        read_npz(path, DataError)


def test_a_damaged_member_fails_its_crc(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.arange(1000.0))  # stored, not deflated: bytes flip in place
    data = bytearray((tmp_path / "plain.npz").read_bytes())
    data[500] ^= 0xFF
    (tmp_path / "plain.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a readable .npz file.*CRC"):
        read_npz(tmp_path / "plain.npz", DataError)


def test_model_files_are_bounded_when_saved_too(monkeypatch, tmp_path):
    from nnlearn.model import _model as model_module

    monkeypatch.setattr(model_module, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(ModelFileError, match="cannot be saved: its weights take"):
        Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2])).save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    assert MAX_ARRAY_BYTES == 2 * 2**30


def test_a_bomb_checkpoint_is_refused(tmp_path):
    path = bomb(tmp_path / "ckpt.npz", name="x.npy")
    with bounded(5, 20), pytest.raises(ModelFileError, match="header claims"):
        load_checkpoint(path)
    # Within the default bound (a quarter of the memory) where the machine has 13 GB: its
    # document is read first, alone, so a file without one is refused before the rest.
    path = bomb(tmp_path / "fair.npz", shape=(20_000, 20_000), zeros=2**20, honest_directory=True, name="x.npy")
    with bounded(5, 20), pytest.raises(ModelFileError, match="no metadata|more than a checkpoint file is read with"):
        load_checkpoint(path)


# ------------------------------------------------------------ crafted .mat weights


def mat_variable(name, dims, data, stated=None):
    """A MATLAB v5 double matrix element; ``stated`` is the byte count its data tag claims."""

    def element(kind, payload, size=None):
        padded = payload + bytes(-len(payload) % 8)
        return struct.pack("<II", kind, len(payload) if size is None else size) + padded

    body = (
        element(6, struct.pack("<II", 6, 0))  # array flags: a double matrix
        + element(5, struct.pack(f"<{len(dims)}i", *dims))
        + element(1, name.encode())
        + element(9, data, stated)
    )
    return struct.pack("<II", 14, len(body)) + body


def mat_file(path, *variables, compress=True):
    header = b"MATLAB 5.0 MAT-file, crafted".ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    body = b"".join(
        struct.pack("<II", 15, len(packed := zlib.compress(variable))) + packed if compress else variable
        for variable in variables
    )
    path.write_bytes(header + body)
    return path


def test_a_crafted_mat_file_reads_as_scipy_would(tmp_path):
    values = np.arange(4.0)
    path = mat_file(tmp_path / "w.mat", mat_variable("Theta1", (2, 2), values.tobytes()))
    (theta,) = read_octave_weights(path)
    np.testing.assert_array_equal(theta, values.reshape(2, 2, order="F"))


def test_a_mat_variable_inflating_beyond_its_shape_is_refused(tmp_path):
    # A 2x2 matrix whose data tag claims 64 MB of zeros: scipy would inflate them all.
    zeros = bytes(64 * 2**20)
    path = mat_file(tmp_path / "bomb.mat", mat_variable("Theta1", (2, 2), zeros))
    assert path.stat().st_size < 200_000
    with bounded(10, 40), pytest.raises(ModelFileError, match="Theta1 inflates to more than its shape needs"):
        read_octave_weights(path)


def test_a_mat_matrix_claiming_more_than_a_weights_file_holds_is_refused(tmp_path):
    path = mat_file(tmp_path / "huge.mat", mat_variable("Theta1", (100_000, 100_000), bytes(64)), compress=False)
    with bounded(5, 20), pytest.raises(ModelFileError, match="more than a weights file holds; refused"):
        read_octave_weights(path)


def test_only_the_theta_variables_are_read(tmp_path, monkeypatch):
    # Another variable is skipped unread, however it would inflate.
    path = mat_file(
        tmp_path / "w.mat",
        mat_variable("Theta1", (1, 2), np.ones(2).tobytes()),
        mat_variable("junk", (2, 2), bytes(64 * 2**20)),
    )
    with bounded(10, 40):
        (theta,) = read_octave_weights(path)
    assert theta.shape == (1, 2)


# ------------------------------------------------------------- every verb, in-process


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A FIFO and a link to /dev/zero under each weights suffix, a bomb, data and a model."""
    work = tmp_path_factory.mktemp("untrusted")
    for suffix in (".mat", ".npz"):
        os.mkfifo(work / f"fifo{suffix}")
        (work / f"zero{suffix}").symlink_to("/dev/zero")
    X, y = load_digits8()
    np.savez(work / "d.npz", X=X, y=y)
    Model(init_random((64, 5, 10), rng=0), np.arange(10)).save(work / "model.npz")
    bomb(work / "bomb.npz")
    bomb(work / "fair-bomb.npz", shape=(20_000, 20_000), zeros=2**20, honest_directory=True)
    return work


@pytest.fixture
def cli(capsys, work, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def run(*args):
        with deadline(60):
            return run_cli(capsys, *args)

    return run


def verbs_reading(weights, tmp_path):
    """Each verb's command line reading ``weights`` as its model or weights."""
    return {
        "evaluate": ["evaluate", weights, "--data", "d.npz"],
        "report": ["report", weights, tmp_path / "rep"],
        "show": ["show", weights, "--out", tmp_path / "h.png"],
        "cost": ["cost", "--weights", weights, "--data", "digits8"],
        "reproduce": ["reproduce", "--weights", weights, "--max-iter", "1"],
        "predict": ["predict", weights, "d.npz"],
    }


VERBS = ["evaluate", "report", "show", "cost", "reproduce", "predict"]


@pytest.mark.parametrize("kind", ["fifo", "zero"])
@pytest.mark.parametrize("suffix", [".mat", ".npz"])
@pytest.mark.parametrize("verb", VERBS)
def test_a_special_weights_file_is_refused_by_every_verb_without_reading_it(cli, tmp_path, verb, suffix, kind):
    weights = f"{kind}{suffix}"
    result = cli(*verbs_reading(weights, tmp_path)[verb])
    assert_one_line_error(result, weights, "FIFO, device or other special file", "refused")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("name", ["bomb.npz", "fair-bomb.npz"])
def test_a_bomb_model_is_refused_by_every_verb_at_once(cli, tmp_path, verb, name):
    start = time.perf_counter()
    assert_one_line_error(cli(*verbs_reading(name, tmp_path)[verb]), name, "refused")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("what", ["fifo.npz", "zero.npz", "bomb.npz", "fair-bomb.npz"])
def test_a_special_or_bomb_checkpoint_is_refused_by_train_resume(cli, tmp_path, what):
    start = time.perf_counter()
    result = cli("train", "--resume", what, "--out", tmp_path / "m.npz")
    assert_one_line_error(result, what)
    assert "refused" in result.stderr or "no metadata" in result.stderr
    assert list(tmp_path.iterdir()) == [] and time.perf_counter() - start < 10


@pytest.mark.parametrize("what", ["fifo.npz", "zero.npz", "bomb.npz"])
def test_a_special_or_bomb_data_file_is_refused(cli, what):
    assert_one_line_error(cli("evaluate", "model.npz", "--data", what), what)
    assert_one_line_error(cli("train", "--data", what, "--max-iter", "1"), what)


def test_the_shipped_weights_and_a_real_model_still_load(cli, tmp_path):
    assert ok_json(cli("cost", "--weights", EX4WEIGHTS, "--json"))["accuracy"] > 0.9
    assert ok_json(cli("evaluate", "model.npz", "--data", "d.npz", "--json"))["m"] == 1797


# ------------------------------------------------------------- the cost figure


@pytest.mark.parametrize(
    "costs",
    [
        [-1e308, 1e308],  # once: "ValueError: arange: cannot compute length"
        [1e-300, 1e300],
        [0.0, 1e308],
        [float("nan"), float("inf"), -float("inf")],
        [3.0, float("nan"), 1.0],
        [1e100, 0.0],
        [5e-324, 1.0],
        [2.0, 2.0],
    ],
)
def test_the_cost_figure_draws_any_floats_without_overflow(costs):
    import warnings

    from nnlearn.reporting._training_plots import plot_cost_history

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = plot_cost_history(costs)
        fig.canvas.draw()
    (line,) = fig.axes[0].get_lines()
    drawable = [c for c in costs if np.isfinite(c) and abs(c) <= 1e300]
    assert list(line.get_ydata()) == drawable
    legend = fig.axes[0].get_legend().get_texts()[0].get_text()
    assert len(legend) < 120, legend
    if len(drawable) < len(costs):
        assert f"{len(costs) - len(drawable)} not drawn" in legend
    positive = drawable and min(drawable) >= 1e-100 and max(drawable) <= 1e100
    assert fig.axes[0].get_yscale() == ("log" if positive else "linear")


def test_a_data_file_that_inflates_a_thousandfold_is_refused_before_inflating(tmp_path):
    from nnlearn.datasets._files import load_npz
    from nnlearn.errors import DataError

    np.savez_compressed(tmp_path / "zeros.npz", X=np.zeros((20000, 400)), y=np.zeros(20000, dtype=int))
    with pytest.raises(DataError, match="claim 64,000,000 bytes"):
        load_npz(tmp_path / "zeros.npz")
    np.savez_compressed(tmp_path / "real.npz", X=np.random.default_rng(0).random((2000, 50)), y=np.arange(2000) % 4)
    assert load_npz(tmp_path / "real.npz")[0].shape == (2000, 50)
