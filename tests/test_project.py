"""The project's own promises: README's commands, CI, and the layering of the code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "teamroom"


def _readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_test_command_that_readme_gives():
    test_command = _readme_commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0] if node.level == 0 else "")
            if node.module.startswith("teamroom."):
                found.add(node.module)
    return found


@pytest.mark.parametrize("layer", ["store", "tools", "schemas"])
def test_lower_layers_never_import_mcp_or_the_server(layer):
    for path in (SRC / layer).rglob("*.py"):
        imported = _imports(path)
        assert "mcp" not in imported, f"{path.relative_to(ROOT)} imports mcp"
        assert "teamroom.server" not in imported, f"{path.relative_to(ROOT)} imports the server"
        if layer != "tools":
            assert not any(m.startswith("teamroom.tools") for m in imported), f"{path} imports tools/"


def test_the_demo_runs_real_servers_and_shows_the_redelivery(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "teamroom", "demo", "--db", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "nack" in out.stdout and "attempt 2" in out.stdout
    assert re.search(r"m1 +lead +dispatch +-> builder-1 acked \(attempt 2\)\n", out.stdout)
    assert re.search(r"m2 +lead +dispatch +-> builder-2 acked \(attempt 1\)\n", out.stdout)
    assert "@builders" not in out.stdout, "each builder gets its own job, by name: none is handed to two"
    assert re.search(r"lead +starting \.\.\. ready", out.stdout), "progress while the servers start"
    assert out.stderr == ""
