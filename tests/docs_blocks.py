"""The docs' code blocks as tests (Sybil), and the sample outputs they show.

Every fenced ``python`` block of README.md and docs/*.md runs (each document's blocks in
one namespace, in order), every ``bash`` block (its commands must succeed), and every
``console`` block: its lines ``$ COMMAND`` run in a
shell, in a folder of the document's own (the blocks of a document share it, in order), and
what a command prints (stdout and stderr, progress bars left out) must be what the block
shows under it, within these rules:

* a number may differ in its last shown digit by 2 (the BLAS kernel's last digits, as
  docs/cli.md says); times (a line starting ``time``, a number followed by ``s`` or
  ``seconds``, a JSON ``"seconds":`` value, a table column headed ``... s``) may differ at
  will, and so may a ``tcp://host:PORT`` address's port;
* ``...`` alone on a line stands for any lines, ``...`` within a line for the rest of it.

A block is skipped by a Sybil directive before it, with the reason, for the two reasons
there are: ``<!-- skip: next "needs the network: ..." -->`` and
``<!-- skip: next "runs until stopped: ..." -->``. A ``console`` block whose info string
is ``console slow`` (``python slow``, ``bash slow``) runs in the full tier only (it is
marked ``slow``). ``python
docs/regenerate.py`` writes the outputs the commands print now into the blocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", "docs/*.md"]
#: The environment commands run in: the machine's threads (as the samples were made), no
#: colour, and the virtual environment's scripts first on the PATH.
ENV = {
    **os.environ,
    "NO_COLOR": "1",
    "COLUMNS": "100",
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
}
COMMAND_SECONDS = 600
_NUMBER = re.compile(r"^[(\[{]?([-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?)(%|s)?[)\]},:;]*$", re.IGNORECASE)
_PROGRESS = re.compile(r"\r|\d+%\|")


def commands_and_outputs(source: str) -> list[tuple[str, list[str]]]:
    """A console block's ``$ COMMAND`` lines (a trailing backslash continues one) and the
    lines shown under each."""
    steps: list[tuple[str, list[str]]] = []
    lines = source.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + "\n" + lines[i]
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
        i += 1
    return steps


def run(command: str, folder: Path) -> list[str]:
    """What ``command`` prints in ``folder``, stdout and stderr in the order written,
    without progress bars, trailing spaces and trailing empty lines."""
    done = subprocess.run(
        command,
        shell=True,
        cwd=folder,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    printed = [line.rstrip() for line in done.stdout.split("\n") if not _PROGRESS.search(line)]
    printed = [line.replace(str(folder) + "/", "").replace(str(folder), ".") for line in printed]
    while printed and not printed[-1]:
        printed.pop()
    while printed and not printed[0]:  # where a progress bar's last state was
        printed.pop(0)
    return printed


def _decimals(token: str) -> int:
    digits = token.split("e")[0].split("E")[0]
    return len(digits.split(".")[1]) if "." in digits else 0


def _tokens_match(shown: str, printed: str, timing: bool) -> bool:
    if shown == printed:
        return True
    a, b = _NUMBER.match(shown), _NUMBER.match(printed)
    if not (a and b) or a.group(2) != b.group(2):
        return False
    if timing or a.group(2) == "s":
        return True
    x, y = float(a.group(1).replace(",", "")), float(b.group(1).replace(",", ""))
    return abs(x - y) <= 2 * 10.0 ** -_decimals(a.group(1)) * (1 + 1e-9)


_PORT = re.compile(r"(tcp://[^\s:,()]+):\d+")
_TOKEN = re.compile(r"\S+")


def lines_match(shown: str, printed: str, time_columns: frozenset[int] = frozenset()) -> bool:
    """One shown line against one printed line, by the module's rules. ``time_columns``: the
    character columns where a table's time column ends (its header's ``s``)."""
    shown, printed = _PORT.sub(r"\1:PORT", shown), _PORT.sub(r"\1:PORT", printed)
    want, got = list(_TOKEN.finditer(shown)), printed.split()
    words = [m.group() for m in want]
    timing = bool(words) and (words[0] in ("time", "seconds") or "seconds" in words)
    for k, match in enumerate(want):
        token = match.group()
        if token == "...":
            return True
        if k >= len(got):
            return False
        followed_by_s = k + 1 < len(words) and words[k + 1] in ("s", "seconds")
        after_seconds = k > 0 and words[k - 1].endswith('seconds":')
        in_time_column = match.end() in time_columns
        if not _tokens_match(token, got[k], timing or followed_by_s or after_seconds or in_time_column):
            return False
    return len(want) == len(got)


def _time_columns(line: str) -> frozenset[int]:
    """A table header's time columns: where its tokens ``s`` end (``fit s``)."""
    if any(ch.isdigit() for ch in line):
        return frozenset()
    return frozenset(m.end() for m in _TOKEN.finditer(line) if m.group() == "s")


def mismatch(shown: list[str], printed: list[str]) -> str | None:
    """None when ``printed`` is what ``shown`` shows; else where they part."""
    i = j = 0
    columns: frozenset[int] = frozenset()
    while i < len(shown):
        columns = _time_columns(shown[i]) or (columns if shown[i].strip() else frozenset())
        if shown[i].strip() == "...":
            if i + 1 == len(shown):
                return None
            while j < len(printed) and not lines_match(shown[i + 1], printed[j], columns):
                j += 1
            i += 1
            continue
        if j >= len(printed):
            return f"shown line {i + 1} {shown[i]!r}, but the output ended"
        if not lines_match(shown[i], printed[j], columns):
            return f"shown line {i + 1}:\n  shown:   {shown[i]!r}\n  printed: {printed[j]!r}"
        i, j = i + 1, j + 1
    if j < len(printed):
        return f"printed more than shown, from {printed[j]!r}"
    return None


def sandbox(namespace: dict) -> Path:
    """The document's folder for its console blocks (made on its first block)."""
    if "_folder" not in namespace:
        namespace["_folder"] = Path(tempfile.mkdtemp(prefix="nnlearn-docs-"))
    return namespace["_folder"]


#: Set by docs/regenerate.py: the file each console block's commands and outputs are
#: recorded in (one JSON line a block), and no block fails.
RECORD = "NNLEARN_DOCS_RECORD"


def evaluate_console(example) -> str | None:
    """Sybil's evaluator of a console block: each command run, its output compared."""
    folder = sandbox(example.namespace)
    steps = []
    for command, shown in commands_and_outputs(example.parsed):
        printed = run(command, folder)
        shown = [line.rstrip() for line in shown if not _PROGRESS.search(line)]
        wrong = mismatch(shown, printed)
        steps.append({"command": command, "shown": shown, "printed": printed, "matched": wrong is None})
        if wrong is not None and not os.environ.get(RECORD):
            return f"$ {command}\n{wrong}\nprinted:\n" + "\n".join(printed)
    if os.environ.get(RECORD):
        region = example.region
        text = example.document.text[region.start : region.end]
        record = {"path": str(example.path), "start": region.start, "text": text, "steps": steps}
        with open(os.environ[RECORD], "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
    return None


def evaluate_bash(example) -> str | None:
    """Sybil's evaluator of a bash block: the script run in the document's folder; it must succeed."""
    done = subprocess.run(
        "set -e\n" + example.parsed,
        shell=True,
        executable="/bin/bash",
        cwd=sandbox(example.namespace),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    if done.returncode != 0:
        return f"exit status {done.returncode}:\n{done.stdout[-2000:]}"
    return None


def _in_folder(evaluator):
    def evaluate(example):
        here = os.getcwd()
        os.chdir(sandbox(example.namespace))
        try:
            return evaluator(example)
        finally:
            os.chdir(here)

    return evaluate


def make_sybil():
    from sybil import Sybil
    from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

    class ShellParser:
        """``LANGUAGE`` and ``LANGUAGE slow`` fenced blocks, run by ``evaluator``."""

        def __init__(self, language, evaluator):
            self.evaluator = evaluator
            self.lexer = FencedCodeBlockLexer(
                language=rf"{language}( slow)?", mapping={"language": "arguments", "source": "source"}
            )

        def __call__(self, document) -> Iterator:
            for region in self.lexer(document):
                region.parsed = region.lexemes["source"]
                region.evaluator = self.evaluator
                region.slow = region.lexemes["arguments"].endswith("slow")
                yield region

    def setup(namespace):
        os.environ.setdefault("MPLBACKEND", "Agg")
        namespace["__name__"] = "__main__"  # a script's guard (if __name__ == "__main__") runs, as it would

    def teardown(namespace):
        import shutil

        folder = namespace.get("_folder")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    class PythonInFolder:
        """``python`` fenced blocks, run in the document's folder (what they write lands there)."""

        def __init__(self):
            from sybil.evaluators.python import PythonEvaluator
            from sybil.parsers.markdown import CodeBlockParser

            self.parser = PythonCodeBlockParser()
            self.slow = CodeBlockParser(language="python slow", evaluator=PythonEvaluator())

        def __call__(self, document) -> Iterator:
            for parser, slow in ((self.parser, False), (self.slow, True)):
                for region in parser(document):
                    region.evaluator = _in_folder(region.evaluator)
                    region.slow = slow
                    yield region

    return Sybil(
        parsers=[
            PythonInFolder(),
            ShellParser("console", evaluate_console),  # commands and what each prints
            ShellParser("bash", evaluate_bash),  # commands that must succeed
            SkipParser(),
        ],
        patterns=DOCUMENTS,
        path=str(ROOT),
        setup=setup,
        teardown=teardown,
    )
