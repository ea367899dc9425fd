"""The service layer sits under the web package: `services` never imports `search_api`
(the CLI and worker tasks call services without loading the web application)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_services_do_not_import_the_web_package() -> None:
    modules = sorted((ROOT / "services").rglob("*.py"))
    assert modules
    offending = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imports(path) if n == "search_api" or n.startswith("search_api.")
        )
        for path in modules
    }
    assert {k: v for k, v in offending.items() if v} == {}
