"""Write into the docs the outputs their ``console`` blocks' commands print now.

    python docs/regenerate.py            # every block, the slow ones too (some minutes)

It runs the docs' tests (tests/docs_blocks.py) with pytest, recording what each command
printed, then rewrites the output under every command whose shown output no longer
matches (by the rules tests/docs_blocks.py states: a shown output that still matches, with
its ``...`` and its timings, is left as it is). Then ``git diff docs README.md`` shows what
changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def block_text(steps: list[dict]) -> str:
    """A console block's body: each command, then its output (shown if it still matches)."""
    lines = []
    for step in steps:
        command = step["command"].replace("\n", "\\\n")
        lines.append(f"$ {command}")
        lines.extend(step["shown"] if step["matched"] else step["printed"])
    return "\n".join(lines) + "\n"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "record.jsonl"
        record.touch()
        env = {**os.environ, "NNLEARN_DOCS_RECORD": str(record)}
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "README.md", "docs"]
        done = subprocess.run(pytest, cwd=ROOT, env=env)
        blocks = [json.loads(line) for line in record.read_text().splitlines()]
    by_file = defaultdict(list)
    for block in blocks:
        by_file[block["path"]].append(block)
    changed = 0
    for path, found in by_file.items():
        text = Path(path).read_text(encoding="utf-8")
        for block in sorted(found, key=lambda b: b["start"], reverse=True):
            if all(step["matched"] for step in block["steps"]):
                continue
            old = block["text"]  # found by its text: the file may have been edited meanwhile
            where = text.find(old)
            if where < 0:
                print(f"{path}: a block changed while it ran, left as it is: {old.splitlines()[1][:60]!r}")
                continue
            head, _, _ = old.partition("\n")  # the opening fence, with its info string
            new = head + "\n" + block_text(block["steps"]) + "```" + ("\n" if old.endswith("\n") else "")
            text = text[:where] + new + text[where + len(old) :]
            changed += 1
        Path(path).write_text(text, encoding="utf-8")
    print(f"{len(blocks)} console blocks run, {changed} rewritten; pytest exit status {done.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
