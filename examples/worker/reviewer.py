"""A reviewer bot as a plain script: ``teamroom worker reviewer --role reviewer -- python examples/worker/reviewer.py``.

teamroom worker gives it one message as JSON on stdin. It reviews the files the message names (in
its payload's ``files``, or any existing path in its body): Python that does not compile, lines
over 120 characters, trailing whitespace, and what ``ruff check`` says when ruff is on PATH. What
it prints is the review, sent back to the sender as a ``result`` reply; exit 0 acks the message.
It exits non-zero only for what a retry could fix (here: ruff could not be run), so that the
message comes back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

LINE_LIMIT = 120
PATH_LIKE = re.compile(r"[\w./-]+\.\w+")


def named_files(message: dict) -> list[Path]:
    payload = message.get("payload") or {}
    named = payload.get("files") if isinstance(payload.get("files"), list) else PATH_LIKE.findall(message["body"])
    return [Path(name) for name in dict.fromkeys(named) if Path(name).is_file()]


def review(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    notes = []
    if path.suffix == ".py":
        try:
            compile(text, str(path), "exec")
        except SyntaxError as exc:
            notes.append(f"{path}:{exc.lineno}: does not compile: {exc.msg}")
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > LINE_LIMIT:
            notes.append(f"{path}:{number}: {len(line)} characters (limit {LINE_LIMIT})")
        if line != line.rstrip():
            notes.append(f"{path}:{number}: trailing whitespace")
    return notes


def ruff(paths: list[Path]) -> list[str]:
    python = [str(p) for p in paths if p.suffix == ".py"]
    if not python or shutil.which("ruff") is None:
        return []
    run = subprocess.run(
        ["ruff", "check", "--output-format", "concise", "--no-cache", *python], capture_output=True, text=True
    )
    if run.returncode not in (0, 1):  # 1: findings; anything else: ruff itself failed
        sys.exit(f"ruff failed: {run.stderr.strip()}")
    return [line for line in run.stdout.splitlines() if line.startswith(tuple(python))]


def main() -> None:
    message = json.load(sys.stdin)
    paths = named_files(message)
    if not paths:
        print(f"No file to review: name existing paths in the message ({message['message_id']}).")
        return
    notes = [note for path in paths for note in review(path)] + ruff(paths)
    names = ", ".join(str(p) for p in paths)
    if not notes:
        print(f"Reviewed {names}: nothing to report.")
        return
    print(f"Reviewed {names}: {len(notes)} note{'s' if len(notes) != 1 else ''}.")
    print("\n".join(notes[:50]) + ("\n..." if len(notes) > 50 else ""))


if __name__ == "__main__":
    main()
