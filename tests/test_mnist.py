"""MNIST and Fashion-MNIST downloads, and the IDX reader.

No test touches the internet: every source is pointed at a closed local port unless a test
serves generated IDX files itself, from an HTTP server on 127.0.0.1, and every cache is a
temporary directory.
"""

import gzip
import hashlib
import http.server
import logging
import os
import threading
import time

import numpy as np
import pytest

from nnlearn.datasets import _builtin as datasets
from nnlearn.datasets import _mnist as mnist
from nnlearn.datasets._builtin import DATASET_FRAMING, DATASETS, load_data
from nnlearn.datasets._idx import read_idx
from nnlearn.datasets._images import FRAMINGS
from nnlearn.datasets._mnist import Source, load_fashion_mnist, load_mnist, resample_digits
from nnlearn.errors import DataError, ParameterError

NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
COUNTS = {"train": 12, "test": 5}


def idx(array, magic=None):
    """An IDX file of unsigned bytes holding ``array``: magic, big-endian dimensions, values."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def gz(data):
    return gzip.compress(data, mtime=0)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def generated(subset, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(COUNTS[subset], 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, size=COUNTS[subset]).astype(np.uint8)


def unrolled(images):
    return images.transpose(0, 2, 1).reshape(len(images), -1) / 255.0


def cached_files(folder):
    return sorted(path.name for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.truncated, self.requests = {}, set(), []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.lstrip("/")
        self.server.requests.append(name)
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # A connection cut half-way: the body is shorter than its announced length.
        self.wfile.write(data[: len(data) // 2] if name in self.server.truncated else data)
        self.close_connection = True

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Every test: a temporary cache, and sources at a closed local port, never the internet."""
    monkeypatch.setenv("NNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for dataset, source in list(mnist.SOURCES.items()):
        monkeypatch.setitem(mnist.SOURCES, dataset, Source(closed_url(), source.files))
    return tmp_path / "cache"


def closed_url():
    """The URL of a port nothing listens on (it was just bound and released)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def server():
    server = Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def served(server, monkeypatch):
    """Both datasets' four files generated, served gzipped, their checksums pinned."""
    arrays = {}
    for seed, dataset in enumerate(("mnist", "fashion-mnist")):
        files = {}
        for subset, (images_name, labels_name) in NAMES.items():
            images, labels = generated(subset, seed * 10 + len(subset))
            arrays[dataset, subset] = images, labels
            files[images_name], files[labels_name] = gz(idx(images)), gz(idx(labels))
        # The server holds each dataset's files under its own folder, as the real hosts do.
        server.files.update({f"{dataset}/{name}": data for name, data in files.items()})
        source = Source(f"{server.url}{dataset}/", {name: sha256(data) for name, data in files.items()})
        monkeypatch.setitem(mnist.SOURCES, dataset, source)
    return arrays


# ---------------------------------------------------------------------- downloads


@pytest.mark.parametrize(("dataset", "load"), [("mnist", load_mnist), ("fashion-mnist", load_fashion_mnist)])
@pytest.mark.parametrize("subset", ["train", "test"])
def test_download_then_cache_hit_without_a_request(dataset, load, subset, served, server, offline):
    images, labels = served[dataset, subset]
    X, y = load(subset)
    np.testing.assert_array_equal(X, unrolled(images))
    np.testing.assert_array_equal(y, labels)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert sorted(server.requests) == sorted(f"{dataset}/{name}" for name in NAMES[subset])
    # Exactly the two files under the dataset's own folder: no temporary file left behind.
    assert cached_files(offline) == sorted(NAMES[subset])
    assert all((offline / dataset / name).is_file() for name in NAMES[subset])
    before = len(server.requests)
    X2, y2 = load(subset)
    assert len(server.requests) == before  # the cache answered
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_images_are_column_major_like_every_nnlearn_dataset(server, monkeypatch):
    image = np.zeros((28, 28), dtype=np.uint8)
    image[3:25, 4] = 255  # an L: a stroke down the left side ...
    image[24, 4:18] = 128  # ... and a fainter foot to the right, at the bottom
    files = {NAMES["train"][0]: gz(idx(image[None])), NAMES["train"][1]: gz(idx([7]))}
    server.files.update(files)
    monkeypatch.setitem(mnist.SOURCES, "mnist", Source(server.url, {n: sha256(d) for n, d in files.items()}))
    X, y = load_mnist()
    upright = X[0].reshape(28, 28, order="F")
    np.testing.assert_array_equal(upright, image / 255.0)
    assert upright[24, 17] == pytest.approx(128 / 255) and upright[17, 24] == 0  # not transposed
    assert list(y) == [7]


def test_size_20_resamples_as_the_embedded_digits_and_is_cached(served, server, offline):
    images, labels = served["mnist", "train"]
    X, y = load_mnist("train", size=20)
    assert X.shape == (len(images), 400)
    # The very step that made digits20: the course's weights apply alike.
    np.testing.assert_array_equal(X, resample_digits(images / 255.0))
    np.testing.assert_array_equal(y, labels)
    assert datasets.resample_digits is resample_digits
    converted = [name for name in cached_files(offline) if name.endswith(".npz")]
    assert len(converted) == 1 and converted[0].startswith("train-20x20-")
    # The converted arrays are enough: even without the downloaded files, no request.
    for name in NAMES["train"]:
        (offline / "mnist" / name).unlink()
    before = len(server.requests)
    X2, y2 = load_mnist("train", size=20)
    assert len(server.requests) == before
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_a_damaged_converted_cache_is_rebuilt(served, offline):
    X, _ = load_mnist("test", size=20)
    (converted,) = (offline / "mnist").glob("*.npz")
    converted.write_bytes(b"not an npz")
    X2, _ = load_mnist("test", size=20)
    np.testing.assert_array_equal(X2, X)


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_cached(served, server, monkeypatch, offline):
    source = mnist.SOURCES["mnist"]
    wrong = dict(source.files, **{NAMES["train"][0]: sha256(b"some other file")})
    monkeypatch.setitem(mnist.SOURCES, "mnist", Source(source.url, wrong))
    with pytest.raises(DataError, match="does not match its published checksum") as info:
        load_mnist()
    assert "\n" not in str(info.value)
    assert f"mnist/{NAMES['train'][0]}" in server.requests  # it was downloaded, then refused
    assert cached_files(offline) == []


def test_a_cut_download_is_an_error_and_nothing_is_cached(served, server, offline):
    server.truncated.add(f"mnist/{NAMES['test'][0]}")
    with pytest.raises(DataError, match="cannot download"):
        load_mnist("test")
    assert NAMES["test"][0] not in cached_files(offline)
    assert all(name in NAMES["test"] for name in cached_files(offline))  # no temporary file either


def test_server_down_is_a_clear_error(offline):
    start = time.monotonic()
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:\d+/.*check the network") as info:
        load_mnist()
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "\n" not in message and str(offline / "mnist") in message  # where to place the files instead
    assert cached_files(offline) == []


def test_missing_file_on_the_server_names_the_http_status(served, server):
    del server.files[f"fashion-mnist/{NAMES['test'][1]}"]
    with pytest.raises(DataError, match="HTTP 404"):
        load_fashion_mnist("test")


def test_files_placed_in_the_cache_are_used_offline(offline, monkeypatch):
    images, labels = generated("test", 3)
    files = {NAMES["test"][0]: gz(idx(images)), NAMES["test"][1]: gz(idx(labels))}
    folder = offline / "mnist"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    url = mnist.SOURCES["mnist"].url  # a closed port: any request would fail
    monkeypatch.setitem(mnist.SOURCES, "mnist", Source(url, {name: sha256(data) for name, data in files.items()}))
    X, y = load_mnist("test")
    np.testing.assert_array_equal(X, unrolled(images))
    np.testing.assert_array_equal(y, labels)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_cache_is_refused_not_read(offline):
    (offline / "mnist").mkdir(parents=True)
    os.mkfifo(offline / "mnist" / NAMES["train"][0])
    with pytest.raises(DataError, match="FIFO"):
        load_mnist()


@pytest.mark.parametrize(("kwargs", "word"), [({"subset": "valid"}, "subset"), ({"size": 14}, "size")])
def test_bad_subset_or_size(kwargs, word):
    with pytest.raises(ParameterError, match=word):
        load_mnist(**kwargs)


def test_load_data_by_name_gives_20x20_training_images(served):
    images, labels = served["fashion-mnist", "train"]
    X, y = load_data("fashion-mnist")
    np.testing.assert_array_equal(X, resample_digits(images / 255.0))
    np.testing.assert_array_equal(y, labels)
    X, y = load_data("mnist", labels=False)
    assert X.shape == (COUNTS["train"], 400) and y is None


def test_names_are_datasets_with_a_known_framing():
    assert {"mnist", "fashion-mnist"} <= set(DATASETS)
    assert set(DATASET_FRAMING) == set(DATASETS)
    assert set(DATASET_FRAMING.values()) <= set(FRAMINGS)


def test_published_checksums_are_pinned_for_every_file():
    # The real registry, as shipped (the autouse fixture only changed the URLs).
    for source in mnist.SOURCES.values():
        assert sorted(source.files) == sorted(name for pair in NAMES.values() for name in pair)
        assert all(h.startswith("sha256:") and len(h) == len("sha256:") + 64 for h in source.files.values())


# ---------------------------------------------------------------------- IDX files


@pytest.fixture
def pair(tmp_path):
    """A gzipped training pair and an uncompressed test pair, MNIST's names."""
    images, labels = generated("train", 1)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gz(idx(images)))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gz(idx(labels)))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx(images[:5]))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx(labels[:5]))
    return tmp_path, images, labels


def test_read_idx_finds_the_labels_beside_the_images(pair):
    folder, images, labels = pair
    X, y = read_idx(folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(X, unrolled(images))
    np.testing.assert_array_equal(y, labels)
    X, y = read_idx(folder / "t10k-images-idx3-ubyte")
    np.testing.assert_array_equal(X, unrolled(images[:5]))
    np.testing.assert_array_equal(y, labels[:5])


def test_read_idx_labels_given_missing_or_not_wanted(pair, tmp_path):
    folder, images, labels = pair
    X, y = read_idx(folder / "t10k-images-idx3-ubyte", folder / "t10k-labels-idx1-ubyte")
    np.testing.assert_array_equal(y, labels[:5])
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="no labels file beside it"):
        read_idx(folder / "t10k-images-idx3-ubyte")
    assert read_idx(folder / "t10k-images-idx3-ubyte", labels=None)[1] is None
    assert read_idx(folder / "train-images-idx3-ubyte.gz", labels=False)[1] is None


def test_kaggle_names_and_mixed_compression(tmp_path):
    images, labels = generated("test", 2)
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx(images))
    (tmp_path / "t10k-labels.idx1-ubyte.gz").write_bytes(gz(idx(labels)))
    X, y = read_idx(tmp_path / "t10k-images.idx3-ubyte")
    np.testing.assert_array_equal(y, labels)


def test_load_data_reads_idx_paths(pair):
    folder, images, labels = pair
    X, y = load_data(str(folder / "train-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(X, unrolled(images))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(DataError, match="labels file, not images"):
        load_data(folder / "train-labels-idx1-ubyte.gz")


def test_non_square_images_unroll_column_major(tmp_path):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "a-images-idx3-ubyte").write_bytes(idx(image[None]))
    X, _ = read_idx(tmp_path / "a-images-idx3-ubyte", labels=False)
    np.testing.assert_array_equal(X[0].reshape(3, 4, order="F"), image / 255.0)


def malformed_cases():
    images, labels = generated("test", 4)
    good = idx(images)
    huge = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (60000, 60000, 60000))
    return {
        "truncated-raw": (good[:-1], None, "truncated or malformed"),
        "longer-raw": (good + b"\0", None, "truncated or malformed"),
        "truncated-gzip-data": (gzip.compress(good, mtime=0)[:-30], None, "IDX images"),
        "gzip-decompresses-short": (gz(good[:-10]), None, "decompresses to"),
        "gzip-decompresses-long": (gz(good + b"\0\0"), None, "decompresses to more"),
        "gzip-bad-crc": (gz(good)[:-8] + b"\0\0\0\0" + gz(good)[-4:], None, "not a readable IDX"),
        "header-cut": (good[:9], None, "header ends after 9 bytes"),
        "empty": (b"", None, "too short for an IDX header"),
        "wrong-magic": (b"\x00\x00\x0d\x03" + good[4:], None, "magic number 0x00000d03"),
        "huge-claim-in-small-gzip": (gz(huge), None, "more than an IDX file may hold"),
        "no-images": (idx(np.zeros((0, 28, 28))), None, "no images"),
        "labels-as-images": (idx(labels), None, "labels file, not images"),
        "count-mismatch": (good, idx(labels[:-1]), "5 images but"),
        "labels-truncated": (good, idx(labels)[:-2], "labels"),
        "labels-wrong-magic": (good, idx(images), "images file, not labels"),
    }


@pytest.mark.parametrize("case", list(malformed_cases()))
def test_truncated_and_malformed_idx_files_are_data_errors(case, tmp_path):
    images, labels, word = malformed_cases()[case]
    name = "bad-images-idx3-ubyte" + (".gz" if images[:2] == b"\x1f\x8b" else "")
    (tmp_path / name).write_bytes(images)
    if labels is None:
        labels = idx(generated("test", 4)[1])
    (tmp_path / "bad-labels-idx1-ubyte").write_bytes(labels)
    start = time.monotonic()
    with pytest.raises(DataError, match=word) as info:
        read_idx(tmp_path / name)
    assert time.monotonic() - start < 5  # bounded: nothing huge is decompressed or allocated
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "x-images-idx3-ubyte"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="FIFO"):
        read_idx(fifo)


def test_missing_idx_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "nosuch-images-idx3-ubyte.gz")


def test_quiet_unless_progress_is_asked_for(served):
    import pooch

    # pooch's own handler writes to the stderr of its import time; a handler of the test's hears the same.
    heard = []
    handler = logging.Handler()
    handler.emit = heard.append
    pooch.get_logger().addHandler(handler)
    try:
        load_mnist("test", progress=False)
        assert heard == []
        load_fashion_mnist("test", progress=True)  # heard again after a quiet call
        assert any("Downloading data from" in record.getMessage() for record in heard)
    finally:
        pooch.get_logger().removeHandler(handler)
