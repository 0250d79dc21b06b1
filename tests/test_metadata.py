"""A model file's metadata: its schema, its checksum, and the data path it records.

The checksums are unkeyed, so most cases here edit the metadata and recompute them, as
anyone could (``reseal``): what stops such a file is the schema, checked before nnlearn
reads anything from the document. A recorded data file is shown, never opened: the
command line asks for ``--data FILE`` instead.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import nnlearn
from nnlearn import Model, init_random, load_model
from nnlearn.errors import ModelFileError

from .helpers import assert_one_line_error, deadline, ok_json, run_cli

FORMAT1 = Path(__file__).parent / "data" / "format1-model.npz"


def read_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return dict(data)


def reseal(meta):
    """Recompute ``sha256["meta"]`` as docs/network.md says: the SHA-256 of the canonical
    JSON (sorted keys, no spaces, ASCII) of the document without that entry."""
    digests = meta.get("sha256")
    if not isinstance(digests, dict):
        return meta
    body = {**meta, "sha256": {name: value for name, value in digests.items() if name != "meta"}}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digests["meta"] = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return meta


def write_meta_text(source, target, content):
    """``target``: ``source``'s arrays with ``content`` as the raw JSON document."""
    arrays = read_arrays(source)
    arrays["meta"] = np.array(content)
    np.savez(target, **arrays)
    return target


def edit_meta(source, target, edit, sealed=True):
    """``target``: ``source`` with its document changed by ``edit(meta)``, resealed unless not ``sealed``."""
    meta = json.loads(str(read_arrays(source)["meta"]))
    edit(meta)
    return write_meta_text(source, target, json.dumps(reseal(meta) if sealed else meta))


def put(path, value):
    """An edit setting the dotted ``path`` ("history.seed") to ``value``."""

    def edit(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def delete(path):
    def edit(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        del node[last]

    return edit


HISTORY = {
    "cost": [2.5, 1.25, 0.75],
    "optimizer": "lbfgs",
    "max_iter": 3,
    "n_iter": 3,
    "n_evals": 5,
    "message": "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH",
    "stop_reason": "max_iter",
    "interrupted": False,
    "seed": 3,
    "dtype": "float64",
    "epsilon_init": 0.12,
    "seconds": 0.5,
    "batch_size": 50,
    "learning_rate": None,
    "validation_scores": [0.5, 0.75],
    "data": "digits8",
    "test_size": 0.2,
    "split_seed": 0,
    "framing": "fill",
    "source": "a note",
}


@pytest.fixture
def saved(tmp_path):
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), lam=0.5, history=dict(HISTORY))
    return model.save(tmp_path / "m.npz")


# ------------------------------------------------------------------- schema, checksum


def test_every_history_key_nnlearn_writes_round_trips(saved):
    assert load_model(saved).history == HISTORY


def test_the_metadata_carries_a_checksum_of_itself(saved):
    meta = json.loads(str(read_arrays(saved)["meta"]))
    assert set(meta["sha256"]) == {"theta1", "theta2", "classes", "meta"}
    assert reseal(json.loads(json.dumps(meta)))["sha256"]["meta"] == meta["sha256"]["meta"]


@pytest.mark.parametrize(
    "edit",
    [put("lam", 0.25), put("history.seed", 4), put("history.data", "digits20"), delete("history.cost")],
)
def test_edited_metadata_without_a_new_checksum_is_altered(saved, tmp_path, edit):
    edit_meta(saved, tmp_path / "e.npz", edit, sealed=False)
    with pytest.raises(ModelFileError, match="metadata does not match its checksum; the file was altered"):
        load_model(tmp_path / "e.npz")


def test_a_format_2_file_without_a_metadata_checksum_is_refused(saved, tmp_path):
    edit_meta(saved, tmp_path / "e.npz", lambda meta: meta["sha256"].pop("meta"), sealed=False)
    with pytest.raises(ModelFileError, match="altered"):
        load_model(tmp_path / "e.npz")


REFUSED = {
    # id: (edit, words of the message)
    "negative-lambda": (put("lam", -1.0), ["lam", "[0, inf]"]),
    "text-lambda": (put("lam", "1"), ["lam"]),
    "bool-lambda": (put("lam", True), ["lam"]),
    "huge-int-lambda": (put("lam", 10**400), ["lam", "401 digits"]),
    "infinite-seconds": (put("history.seconds", float("inf")), ["history.seconds"]),
    "huge-seconds": (put("history.seconds", 1e300), ["history.seconds"]),
    "text-seconds": (put("history.seconds", "fast"), ["history.seconds"]),
    "text-seed": (put("history.seed", "abc"), ["history.seed", "'abc'"]),
    "negative-seed": (put("history.seed", -1), ["history.seed"]),
    "float-n-iter": (put("history.n_iter", 2.5), ["history.n_iter"]),
    "bool-n-iter": (put("history.n_iter", True), ["history.n_iter", "True"]),
    "text-in-cost": (put("history.cost", [1.0, "x"]), ["history.cost[1]"]),
    # Costs are cross-entropies plus a penalty, never negative; huge ones broke report's figure.
    "negative-cost": (put("history.cost", [1.0, -0.5]), ["history.cost[1]", "[0, 1e+100]"]),
    "extreme-costs": (put("history.cost", [-1e308, 1e308]), ["history.cost[0]"]),
    "huge-cost": (put("history.cost", [1.0, 1.1e100]), ["history.cost[1]"]),
    "infinite-cost": (put("history.cost", [3.0, float("inf")]), ["history.cost[1]"]),
    "nan-cost": (put("history.cost", [float("nan")]), ["history.cost[0]"]),
    "dict-cost": (put("history.cost", {"a": 1}), ["history.cost", "an object of 1 key"]),
    "split-seed-beyond-32-bits": (put("history.split_seed", 2**32), ["history.split_seed"]),
    "test-size-1": (put("history.test_size", 1), ["history.test_size"]),
    "test-size-text": (put("history.test_size", "0.2"), ["history.test_size"]),
    "data-list": (put("history.data", ["/dev/zero"]), ["history.data"]),
    "data-newline": (put("history.data", "a\nnnlearn: all fine"), ["history.data"]),
    "data-escape": (put("history.data", "\x1b[2Jx.npz"), ["history.data"]),
    "data-bidi": (put("history.data", "x\u202eyz.npz"), ["history.data"]),
    "data-too-long": (put("history.data", "a" * 5000), ["history.data", "4096"]),
    "optimizer-number": (put("history.optimizer", 3), ["history.optimizer"]),
    "interrupted-text": (put("history.interrupted", "no"), ["history.interrupted"]),
    "nested-unknown-key": (put("history.extra", {"a": [1]}), ["history.extra", "scalar"]),
    "list-of-lists-unknown-key": (put("history.extra", [[1]]), ["history.extra"]),
    "history-list": (put("history", [1, 2]), ["history"]),
    "history-missing": (delete("history"), ["history", "missing"]),
    "lam-missing": (delete("lam"), ["lam", "missing"]),
    "network-missing": (delete("network"), ["activation and output"]),
    "network-extra-key": (put("network.bias", "yes"), ["activation and output"]),
    "unknown-activation": (put("network.activation", "gelu"), ["unknown activation 'gelu'", "newer nnlearn"]),
    "unknown-top-level-key": (put("data", "/dev/zero"), ["data", "not a key"]),
    "format-version-text": (put("format_version", "2"), ["format version"]),
    "format-version-0": (put("format_version", 0), ["format version 0"]),
    "many-keys": (put("history", {f"k{i}": i for i in range(101)}), ["100"]),
    "bad-digest": (put("sha256.theta1", "not hex"), ["sha256.theta1"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_resealed_metadata_outside_the_schema_is_refused_naming_the_field(saved, tmp_path, case):
    edit, words = REFUSED[case]
    edit_meta(saved, tmp_path / "e.npz", edit)
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path / "e.npz")
    message = str(error.value)
    assert len(message.splitlines()) == 1 and len(message) < 600, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "history",
    [
        {},
        {"note": "trained on Tuesday", "tags": ["a", "b"], "ratio": 0.5, "flag": None, "ok": True},
        {"cost": [1e100, 3.0, 0.0, 5e-324]},  # the edges of what a cost may be
        {"seed": None, "epsilon_init": "auto", "learning_rate": 0.01, "framing": None},
    ],
)
def test_histories_within_the_schema_load(tmp_path, history):
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), history=history)
    loaded = load_model(model.save(tmp_path / "m.npz"))
    assert json.dumps(loaded.history) == json.dumps(history)


@pytest.mark.parametrize(
    ("history", "word"),
    [
        ({"extra": {"nested": 1}}, "history.extra"),
        ({"seed": "3"}, "history.seed"),
        ({"data": "a\nb"}, "history.data"),
        ({"cost": [1.0, "x"]}, "history.cost[1]"),
        # A run whose cost stops being finite ends in a TrainingError: no model records one.
        ({"cost": [3.0, float("inf")]}, "history.cost[1]"),
        ({"cost": [float("nan")]}, "history.cost[0]"),
        ({"cost": [-1.0]}, "history.cost[0]"),
    ],
)
def test_a_history_outside_the_schema_is_not_saved(tmp_path, history, word):
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), history=history)
    with pytest.raises(ModelFileError, match="cannot be saved") as error:
        model.save(tmp_path / "m.npz")
    assert word in str(error.value)
    assert not (tmp_path / "m.npz").exists()


def test_numpy_numbers_in_a_history_are_saved_as_numbers(tmp_path):
    history = {"n_iter": np.int64(3), "cost": (np.float32(1.5), 0.5), "seconds": np.float64(0.25)}
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), history=history)
    assert load_model(model.save(tmp_path / "m.npz")).history == {"n_iter": 3, "cost": [1.5, 0.5], "seconds": 0.25}


def replacing(old, new):
    """A change of the raw JSON text: ``old`` (which must be there) becomes ``new``."""

    def change(good):
        assert old in good
        return good.replace(old, new)

    return change


RAW = {
    # id: (change of the good document's raw text, words of the message)
    "nan-lambda": (replacing('"lam": 0.5', '"lam": NaN'), ["lam"]),
    "overflowing-float": (replacing('"seconds": 0.5', '"seconds": 1e999'), ["history.seconds"]),
    "too-many-digits": (replacing('"n_iter": 3', '"n_iter": ' + "9" * 5000), ["not valid JSON"]),
    "deep-nesting": (replacing('"a note"', "[" * 100_000 + "]" * 100_000), ["deeper"]),
    "moderate-nesting": (replacing('"a note"', "[" * 9 + "]" * 9), ["deeper"]),
    "not-json": (lambda good: good[:-1], ["not valid JSON"]),
    "not-an-object": (lambda good: "[1, 2]", ["not an nnlearn model"]),
}


@pytest.mark.parametrize("case", list(RAW))
def test_raw_metadata_that_json_would_choke_on_is_refused(saved, tmp_path, case):
    change, words = RAW[case]
    good = str(read_arrays(saved)["meta"])
    write_meta_text(saved, tmp_path / "e.npz", change(good))
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path / "e.npz")
    for word in words:
        assert word in str(error.value)


def test_brackets_inside_strings_are_not_nesting(tmp_path):
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), history={"source": "[[[[[[[[[[[[{{{{{{{{"})
    assert load_model(model.save(tmp_path / "m.npz")).history["source"] == "[[[[[[[[[[[[{{{{{{{{"


def test_metadata_longer_than_nnlearn_writes_is_refused_before_parsing(saved, tmp_path, monkeypatch):
    from nnlearn.persist import _archive as archive

    monkeypatch.setattr(archive, "MAX_META_CHARS", 100)
    monkeypatch.setattr(archive.json, "loads", lambda *args, **kwargs: pytest.fail("parsed"))
    # Refused on the array's header: 4 bytes a character, 400 at most.
    with pytest.raises(ModelFileError, match=r"array 'meta' holds [\d,]+ bytes, more than a model file holds \(400 at"):
        load_model(saved)


def test_format_1_files_have_no_metadata_checksum_but_the_same_schema(tmp_path):
    assert load_model(FORMAT1).history["optimizer"] == "lbfgs"
    edit_meta(FORMAT1, tmp_path / "f1.npz", put("history.seconds", "-"), sealed=False)
    with pytest.raises(ModelFileError, match="history.seconds"):
        load_model(tmp_path / "f1.npz")
    edit_meta(FORMAT1, tmp_path / "f1.npz", put("network", {"activation": "relu", "output": "softmax"}), sealed=False)
    with pytest.raises(ModelFileError, match="network"):
        load_model(tmp_path / "f1.npz")
    edit_meta(FORMAT1, tmp_path / "f1.npz", put("history.note", "fine"), sealed=False)
    assert load_model(tmp_path / "f1.npz").history["note"] == "fine"


# ------------------------------------------------------ the command line, a recorded path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Data, a FIFO, and models recording them: one trained on a file, one on a dataset."""
    work = tmp_path_factory.mktemp("recorded")
    X, y = nnlearn.load_digits8()
    np.savez(work / "d.npz", X=X, y=y)
    os.mkfifo(work / "fifo.npz")
    for name, data in (("on-file.npz", str(work / "d.npz")), ("on-digits8.npz", "digits8")):
        model = nnlearn.train(X, y, hidden_layer_sizes=(8,), optimizer="lbfgs", max_iter=5)
        model.history.update(data=data, test_size=0.2, split_seed=0)
        model.save(work / name)
    edit_meta(work / "on-file.npz", work / "on-fifo.npz", put("history.data", str(work / "fifo.npz")))
    edit_meta(work / "on-file.npz", work / "on-zero.npz", put("history.data", "/dev/zero"))
    edit_meta(work / "on-file.npz", work / "bad-split.npz", put("history.data", "digits8"))
    edit_meta(work / "bad-split.npz", work / "bad-split.npz", put("history.test_size", 1e-9))
    return work


@pytest.fixture
def cli(capsys, work, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def run(*args):
        with deadline(60):
            return run_cli(capsys, *args)

    return run


@pytest.mark.parametrize("model", ["on-fifo.npz", "on-zero.npz", "on-file.npz"])
@pytest.mark.parametrize("verb", ["evaluate", "report"])
def test_a_recorded_data_file_is_shown_and_not_opened(cli, work, model, verb):
    args = [verb, model] + (["rep"] if verb == "report" else [])
    result = cli(*args)
    assert_one_line_error(result, "--data FILE", "records its training data as the file")
    recorded = load_model(work / model).history["data"]
    assert recorded in result.stderr
    assert not (work / "rep").exists()


def test_with_data_a_model_recording_a_fifo_is_evaluated_on_the_file_given(cli):
    result = ok_json(cli("evaluate", "on-fifo.npz", "--data", "d.npz", "--json"))
    assert result["m"] == 1797 and result["data"] == "d.npz"


def test_with_data_a_model_recording_a_fifo_is_reported_on_the_file_given(cli, work, tmp_path):
    import nnlearn.reporting._report  # noqa: F401  (imported: a broken module fails here, never skips)

    result = ok_json(cli("report", "on-fifo.npz", "--data", "d.npz", tmp_path / "rep", "--json"))
    assert result["m"] == 1797 and (tmp_path / "rep" / "index.html").exists()


@pytest.mark.parametrize("given", ["d.npz", "./d.npz", "ABSOLUTE"])
def test_the_recorded_file_given_again_is_split_as_recorded(cli, work, given):
    given = str(work / "d.npz") if given == "ABSOLUTE" else given
    result = ok_json(cli("evaluate", "on-file.npz", "--data", given, "--json"))
    # digits8's stratified 20% split: 360 of 1797 held out, as when it was trained
    assert result["m"] == 360 and result["data"] == f"{given}, held-out 20% (seed 0)"


def test_a_copy_of_the_recorded_file_is_evaluated_whole(cli, work):
    (work / "copy.npz").write_bytes((work / "d.npz").read_bytes())
    assert ok_json(cli("evaluate", "on-file.npz", "--data", "copy.npz", "--json"))["m"] == 1797


def test_a_recorded_dataset_name_is_used_directly(cli):
    result = ok_json(cli("evaluate", "on-digits8.npz", "--json"))
    assert result["m"] == 360 and result["data"] == "digits8, held-out 20% (seed 0)"
    # --data with the name gives all of it, as before
    assert ok_json(cli("evaluate", "on-digits8.npz", "--data", "digits8", "--json"))["m"] == 1797


def test_a_recorded_split_that_cannot_be_made_is_one_line(cli):
    assert_one_line_error(cli("evaluate", "bad-split.npz"), "recorded split")


def test_a_resealed_cost_history_beyond_any_cost_is_one_line_for_report(cli, work, tmp_path):
    # It once passed the schema and broke matplotlib ("arange: cannot compute length").
    edit_meta(work / "on-digits8.npz", tmp_path / "costs.npz", put("history.cost", [-1e308, 1e308]))
    assert_one_line_error(cli("report", tmp_path / "costs.npz", tmp_path / "rep"), "history.cost[0]", "refused")
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("costs", [[1e100, 0.0], [1e100, 5e-324, 2.0], [0.0, 0.0], [1e100, 1e100]])
def test_report_draws_cost_histories_at_the_edges_of_the_schema(cli, work, tmp_path, costs):
    edit_meta(work / "on-digits8.npz", tmp_path / "costs.npz", put("history.cost", costs))
    result = cli("report", tmp_path / "costs.npz", tmp_path / "rep", "--json")
    assert ok_json(result)["m"] == 360 and result.stderr == ""
    assert (tmp_path / "rep" / "cost.png").stat().st_size > 0


@pytest.mark.parametrize("verb", ["evaluate", "report", "predict", "show"])
def test_crafted_metadata_is_one_line_for_every_verb_reading_a_model(cli, work, tmp_path, verb):
    edit_meta(work / "on-file.npz", tmp_path / "crafted.npz", put("history.seconds", "fast"))
    args = {
        "evaluate": ["evaluate", tmp_path / "crafted.npz", "--data", "d.npz"],
        "report": ["report", tmp_path / "crafted.npz", "--data", "d.npz", tmp_path / "rep"],
        "predict": ["predict", tmp_path / "crafted.npz", "d.npz"],
        "show": ["show", tmp_path / "crafted.npz", "--out", tmp_path / "h.png"],
    }[verb]
    assert_one_line_error(cli(*args), "history.seconds", "refused")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crafted.npz"]
