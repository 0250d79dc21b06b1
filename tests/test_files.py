"""nnlearn.persist._atomic: writes that never lose or destroy a file, and reads that never hang.

Atomic replacement, creation without overwriting under races (threads and processes),
special files never replaced, a killed writer's temporary files cleaned (and only
theirs), and the probe that an output's directory takes a file. Reading an ``.npz``:
what np.load gives, from regular files only (crafted archives: tests/test_untrusted.py).
"""

import errno
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import nnlearn
from nnlearn.errors import DataError
from nnlearn.persist._atomic import (
    OutputExistsError,
    SpecialFileError,
    atomic_write,
    probe_directory,
    remove_stale_temporaries,
    temporary_prefix,
    write_new,
)
from nnlearn.persist._reading import read_npz

from .helpers import ENV

# The child processes below import nnlearn.persist._atomic alone, without the package's __init__
# (which loads SciPy and scikit-learn): several of them start in a fraction of a second.
BARE_IMPORT = f"""
import sys, types
package = types.ModuleType("nnlearn")
package.__path__ = [{os.path.dirname(nnlearn.__file__)!r}]
sys.modules["nnlearn"] = package
"""


def writer(content):
    return lambda f: f.write(content)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".nnlearn-tmp"))


def test_create_refuse_and_replace(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    assert atomic_write(path, writer(b"one")) == path and path.read_bytes() == b"one"
    with pytest.raises(OutputExistsError, match="out.bin"):
        atomic_write(path, writer(b"two"))
    assert path.read_bytes() == b"one"
    atomic_write(path, writer(b"three"), overwrite=True)
    assert path.read_bytes() == b"three" and leftovers(path.parent) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"precious")

    def fails(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, fails, overwrite=True)
    assert path.read_bytes() == b"precious" and leftovers(tmp_path) == []


def test_the_permissions_are_those_open_would_give(tmp_path):
    path = atomic_write(tmp_path / "out.bin", writer(b"x"))
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("kind", ["fifo", "link-to-fifo", "directory"])
def test_special_files_are_never_replaced_even_with_overwrite(tmp_path, kind):
    # A FIFO stands in for /dev/null: the same kind of file, without a risk to the system.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = {"fifo": fifo, "link-to-fifo": tmp_path / "link", "directory": tmp_path / "dir"}[kind]
    if kind == "link-to-fifo":
        target.symlink_to(fifo)
    if kind == "directory":
        target.mkdir()
    with pytest.raises(SpecialFileError):
        atomic_write(target, writer(b"x"), overwrite=True)
    with pytest.raises(SpecialFileError):
        write_new(target, lambda tmp: tmp.write_bytes(b"x"), overwrite=True)
    assert fifo.is_fifo() and (kind != "link-to-fifo" or target.is_symlink())
    assert leftovers(tmp_path) == []


def test_a_dangling_link_is_a_name_in_use(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError):
        atomic_write(link, writer(b"x"))
    assert not (tmp_path / "nowhere").exists()


def race(path, n, overwrite=False):
    """``n`` threads write ``path`` at once; returns which succeeded."""
    barrier, won, lost = threading.Barrier(n), [], []

    def run(k):
        def write(f):
            barrier.wait()  # every writer has its temporary file open before any finishes
            f.write(f"writer {k}".encode() * 1000)

        try:
            atomic_write(path, write, overwrite=overwrite)
            won.append(k)
        except OutputExistsError:
            lost.append(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def test_of_writers_racing_for_a_new_file_exactly_one_wins(tmp_path):
    for attempt in range(5):
        path = tmp_path / f"out{attempt}.npz"
        won, lost = race(path, 8)
        assert len(won) == 1 and len(lost) == 7
        assert path.read_bytes() == f"writer {won[0]}".encode() * 1000  # whole, and the winner's
    assert leftovers(tmp_path) == []


def test_without_hard_links_the_name_is_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    won, lost = race(tmp_path / "out.bin", 6)
    assert len(won) == 1 and len(lost) == 5
    assert (tmp_path / "out.bin").read_bytes() == f"writer {won[0]}".encode() * 1000
    assert leftovers(tmp_path) == []


RACER = (
    BARE_IMPORT
    + """
import pathlib, sys, time
from nnlearn.persist._atomic import OutputExistsError, atomic_write
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
try:
    atomic_write(sys.argv[2], lambda f: f.write(sys.argv[3].encode() * 100000))
except OutputExistsError:
    sys.exit(3)
"""
)


def test_of_processes_racing_for_a_new_file_exactly_one_wins(tmp_path):
    go, out = tmp_path / "go", tmp_path / "out.bin"
    processes = [subprocess.Popen([sys.executable, "-c", RACER, str(go), str(out), f"p{k}"], env=ENV) for k in range(4)]
    time.sleep(0.5)  # let them start and wait
    go.touch()
    codes = [process.wait(timeout=60) for process in processes]
    assert sorted(codes) == [0, 3, 3, 3], codes
    winner = codes.index(0)
    assert out.read_bytes() == f"p{winner}".encode() * 100000
    assert leftovers(tmp_path) == []


KILLED_WRITER = (
    BARE_IMPORT
    + """
import sys, time
from nnlearn.persist._atomic import atomic_write
def write(f):
    f.write(b"half")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], write)
"""
)


def test_a_killed_writers_temporary_file_is_removed_and_a_live_writers_kept(tmp_path):
    target = tmp_path / "model.npz"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "writing\n"
    [stale] = leftovers(tmp_path)
    assert f".{process.pid}-" in stale  # the writer's process id is in the name
    process.kill()
    process.wait()
    # A live writer's file (this process's, another host's) and a file of another name stay.
    live = tmp_path / (temporary_prefix(target) + "abcdefgh.nnlearn-tmp")
    other_host = tmp_path / f".model.npz.{process.pid}-elsewhere.abcdefgh.nnlearn-tmp"
    unrelated = tmp_path / f".model.npz.{process.pid}.tmp"
    for path in (live, other_host, unrelated):
        path.write_bytes(b"keep")
    assert remove_stale_temporaries(tmp_path) == [tmp_path / stale]
    assert all(path.read_bytes() == b"keep" for path in (live, other_host, unrelated))
    # The next write in that folder cleans up too.
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "writing\n"
    process.kill()
    process.wait()
    atomic_write(tmp_path / "other.bin", writer(b"x"))
    assert sorted(leftovers(tmp_path)) == sorted(p.name for p in (live, other_host))
    assert not target.exists()


def test_a_long_name_keeps_its_temporary_name_short_enough(tmp_path):
    path = tmp_path / ("m" * 240 + ".npz")  # 244 bytes: fits, with no room for a suffix
    atomic_write(path, writer(b"x"))
    assert path.read_bytes() == b"x" and len(temporary_prefix(path)) < 140


def test_write_new_creates_exclusively(tmp_path):
    path = tmp_path / "c.ckpt"
    write_new(path, lambda tmp: tmp.write_bytes(b"first"))
    with pytest.raises(OutputExistsError):
        write_new(path, lambda tmp: tmp.write_bytes(b"second"))
    write_new(path, lambda tmp: tmp.write_bytes(b"third"), overwrite=True)
    assert path.read_bytes() == b"third" and leftovers(tmp_path) == []


def test_probe_leaves_nothing_behind(tmp_path):
    probe_directory(tmp_path / "m.npz")
    probe_directory(tmp_path / "a" / "b" / "m.npz")  # made for the probe, removed again
    assert list(tmp_path.iterdir()) == []


def test_probe_refuses_what_cannot_be_written(tmp_path):
    with pytest.raises(OSError) as info:
        probe_directory(tmp_path / ("x" * 300 + ".npz"))
    assert info.value.errno == errno.ENAMETOOLONG and info.value.filename.endswith(".npz")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OSError):
        probe_directory(tmp_path / "file" / "m.npz")
    with pytest.raises(OSError):
        probe_directory(tmp_path / ("d" * 300) / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------ reading .npz files


ARRAYS = {
    "float": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    "big-endian": np.arange(5, dtype=">i4"),
    "strings": np.array(["a", "bcd", ""]),
    "scalar": np.array("a document"),
    "empty": np.zeros((0, 3)),
    "bools": np.array([True, False]),
    "record": np.array([(1, 2.5)], dtype=[("n", "<i2"), ("x", ">f8")]),
    "complex": np.array([1 + 2j]),
}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_read_npz_gives_what_np_load_gives(tmp_path, save):
    save(tmp_path / "a.npz", **ARRAYS)
    read = read_npz(tmp_path / "a.npz", DataError)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert sorted(read) == sorted(data.files)
        for name in data.files:
            expected = data[name]
            assert read[name].dtype == expected.dtype and read[name].shape == expected.shape, name
            assert read[name].flags.f_contiguous == expected.flags.f_contiguous, name
            np.testing.assert_array_equal(read[name], expected)
    read["float"][0, 0] = -1.0  # writable, as np.load's arrays are


def test_read_npz_refuses_special_files_and_other_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.npz")
    (tmp_path / "zero.npz").symlink_to("/dev/zero")
    (tmp_path / "text.npz").write_text("not a zip")
    for name, words in [("fifo.npz", "FIFO"), ("zero.npz", "FIFO, device"), ("text.npz", "not a NumPy .npz")]:
        with pytest.raises(DataError, match=words):
            read_npz(tmp_path / name, DataError)
    # The file itself may hold its arrays' bound, 1% and a megabyte of zip overhead.
    (tmp_path / "big.npz").write_bytes(bytes(2**20 + 100))
    with pytest.raises(DataError, match="more than a .npz file can hold"):
        read_npz(tmp_path / "big.npz", DataError, max_bytes=10)


def test_the_default_bound_is_a_quarter_of_the_memory(monkeypatch):
    from nnlearn.persist import _reading as files

    memory = files.physical_memory()
    assert memory is None or files.default_max_bytes() == memory // 4
    monkeypatch.setattr(files, "physical_memory", lambda: None)
    assert files.default_max_bytes() == 4 * 2**30


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_without_blocking(tmp_path, monkeypatch):
    from nnlearn.persist import _reading as files

    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    monkeypatch.setattr(files, "regular_file", lambda *args, **kwargs: None)  # as if it had been a file then
    done = []
    thread = threading.Thread(target=lambda: done.append(pytest.raises(DataError, files.open_regular, fifo, DataError)))
    thread.start()
    thread.join(10)
    assert done and "changed into something other than a regular file" in str(done[0].value)
