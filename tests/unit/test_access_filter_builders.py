"""Only the search service builds an `AccessFilter` (what a caller may read, as
an index filter): no route, page, CLI or adapter can make one up, from user
input or otherwise. Checked on the source (every call, however imported), so a
new builder fails here before it ships."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("crossdoc", "auth", "storage", "indexer", "search_api", "services", "infra", "bench")
#: The one module allowed to construct an AccessFilter.
BUILDER = Path("services/search.py")


def _builds_access_filter(tree: ast.AST) -> list[int]:
    """Lines that call `AccessFilter(...)`, `x.AccessFilter(...)` or an alias of it."""
    aliases = {"AccessFilter"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for name in node.names:
                if name.name == "AccessFilter" and name.asname:
                    aliases.add(name.asname)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else None
            )
            if called in aliases:
                lines.append(node.lineno)
    return lines


def builders(root: Path) -> dict[Path, list[int]]:
    """Every product module (relative path) that constructs an AccessFilter, with the lines."""
    found: dict[Path, list[int]] = {}
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            lines = _builds_access_filter(ast.parse(path.read_text(), str(path)))
            if lines:
                found[path.relative_to(root)] = lines
    return found


def test_only_the_search_service_builds_an_access_filter() -> None:
    found = builders(ROOT)
    assert set(found) == {BUILDER}, found


def test_the_scan_sees_a_builder_however_it_is_spelled(tmp_path: Path) -> None:
    (tmp_path / "search_api").mkdir()
    (tmp_path / "search_api" / "sneaky.py").write_text(
        "from indexer.index.base import AccessFilter as AF\n"
        "import indexer.index.base as base\n"
        "a = AF(frozenset({'gov'}))\n"
        "b = base.AccessFilter(frozenset({'gov'}))\n"
    )
    assert builders(tmp_path) == {Path("search_api/sneaky.py"): [3, 4]}


def test_the_service_layer_does_not_import_the_web_package() -> None:
    for path in sorted((ROOT / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "search_api" for n in names), (path, names)
