"""The command line introduces itself: `--version`, and help a person can read (no
`<bool>` beside flags, nothing cut short at 80 columns)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from crossdoc import __version__
from crossdoc.cli import app

pytestmark = pytest.mark.embedded_only(
    "it starts no server: `--version` and the help texts do not depend on the engines"
)


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group below `group` (Typer's own click: duck-typed)."""
    yield path
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


ROOT: Any = typer.main.get_command(app)
COMMANDS = list(_commands(ROOT))


def test_version_prints_the_packages_version() -> None:
    for flag in ("--version", "-V"):
        done = subprocess.run(
            [sys.executable, "-m", "crossdoc", flag],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"crossdoc {__version__}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "crossdoc")
def test_help_is_readable_at_80_columns(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={**os.environ, "COLUMNS": "80"}, terminal_width=80
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "<bool>" not in out
    # Nothing elided: no Rich panel cut off with "…", no summary cut with "...".
    assert "…" not in out and "..." not in out.replace("[ARGS]...", ""), out
    assert not set(out) & set("╭│╰"), out  # plain text, readable in a log or a pipe
    # Every option's help is there in full (wrapped, not truncated).
    command = ROOT
    for name in path:
        command = command.commands[name]
    flat = " ".join(out.split())
    for param in command.params:
        if param.param_type_name == "option" and param.help:
            assert " ".join(param.help.split()) in flat, (param.name, out)
