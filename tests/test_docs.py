"""The rules the docs' blocks are run by (tests/docs_blocks.py), and what is skipped.

The blocks themselves are collected from README.md and docs/*.md by Sybil (conftest.py at
the repository's root); here: the comparison's rules, a broken block failing, and the
skipped blocks listed and counted (at most one in ten).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docs_blocks import ROOT, commands_and_outputs, lines_match, make_sybil, mismatch

sybil = pytest.importorskip("sybil")


def documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_at_most_one_block_in_ten_is_skipped_and_each_says_why(capsys):
    blocks, skipped = 0, []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        blocks += len(re.findall(r"^```(python|bash|console)\b", text, re.MULTILINE))
        for match in re.finditer(r'<!-- skip: next "([^"]+)" -->', text):
            line = text[: match.start()].count("\n") + 1
            skipped.append(f"{path.relative_to(ROOT)}:{line}: {match.group(1)}")
    with capsys.disabled():
        print(f"\ndocs: {blocks} runnable blocks, {len(skipped)} skipped:\n  " + "\n  ".join(skipped))
    assert all(re.match(r".*: (needs the network|runs until stopped): ", reason) for reason in skipped)
    assert len(skipped) * 10 <= blocks


def test_numbers_may_differ_in_their_last_digit_and_times_at_will():
    assert lines_match("final cost       0.325439", "final cost       0.325440")
    assert not lines_match("final cost       0.325439", "final cost       0.325449")
    assert lines_match("test accuracy    93.60%", "test accuracy    93.62%")
    assert not lines_match("test accuracy    93.60%", "test accuracy    93.70%")
    assert lines_match("time             4.04 s", "time             9.27 s")
    assert lines_match("model saved to   ...", "model saved to   anything at all")
    assert mismatch(['{"cost": 3.2, "seconds": 0.0060}'], ['{"cost": 3.2, "seconds": 0.0071}']) is None
    assert mismatch(["workers (tcp://127.0.0.1:36453)"], ["workers (tcp://127.0.0.1:40743)"]) is None
    table = ["rank  train  fit s  lambda", "   1 99.00%   0.71     0.1"]
    assert mismatch(table, [table[0], "   1 99.00%   0.79     0.1"]) is None
    assert mismatch(table, [table[0], "   1 99.00%   0.71     0.5"]) is not None
    assert mismatch(["a", "...", "z"], ["a", "b", "c", "z"]) is None
    assert mismatch(["a", "z"], ["a", "b", "z"]) is not None


def test_a_console_block_is_its_commands_and_what_each_prints():
    source = "$ nnlearn cost \\\n--lambda 1\ncost 0.38\n$ echo $?\n0\n"
    assert commands_and_outputs(source) == [("nnlearn cost \n--lambda 1", ["cost 0.38"]), ("echo $?", ["0"])]


@pytest.mark.parametrize(
    "block, fails",
    [
        ("```console\n$ echo 0.25\n0.25\n```\n", False),
        ("```console\n$ echo 0.25\n0.31\n```\n", True),  # the shown output is wrong
        ("```python\nassert 1 + 1 == 2\n```\n", False),
        ("```python\nundefined_name\n```\n", True),  # the snippet is broken
        ("```bash\ntrue\nfalse\ntrue\n```\n", True),  # a command fails
    ],
)
def test_a_broken_block_fails(tmp_path, block, fails):
    page = tmp_path / "page.md"
    page.write_text("Some prose.\n\n" + block, encoding="utf-8")
    document = make_sybil().parse(Path(page))
    (example,) = list(document.examples())
    if fails:
        from sybil.example import SybilFailure

        with pytest.raises((SybilFailure, NameError)):
            example.evaluate()
    else:
        example.evaluate()
