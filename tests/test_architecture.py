"""The import directions of STYLE.md, enforced over every module of ours.

An AST scan of each module's imports: module level, inside functions, under
`if TYPE_CHECKING:`, and `importlib.import_module("…")` / `__import__("…")` with a
literal name. The rules:

- `auth` and `storage` import nothing of ours but themselves;
- `indexer` imports, of ours, only itself, `storage` and `auth`;
- `services` never imports `search_api` (checked once the package exists);
- the worker's and the command line's roots never load `search_api`, following
  imports transitively from `crossdoc/wiring/worker.py`, `crossdoc/cli.py` and
  `indexer/worker.py`. One edge is allowed: the body of `crossdoc.cli.serve`, which
  *is* the API process and hands over to its own root;
- and for real: a process that starts the worker up to its loop, and runs
  `crossdoc worker`, has no `search_api` module loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("auth", "storage", "indexer", "search_api", "services", "crossdoc")

#: Imports allowed to break the "no web package" rule, by (module, function): the
#: `serve` command is the API process itself.
API_ENTRY_POINTS = {("crossdoc.cli", "serve")}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (dotted)
    line: int
    function: str | None  # the enclosing function's name, if any

    def __str__(self) -> str:
        where = f" in {self.function}()" if self.function else ""
        return f"{self.module}:{self.line}{where} imports {self.target}"


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    """Every module of ours, by dotted name."""
    found = {}
    for package in OURS:
        base = ROOT / package
        if not (base / "__init__.py").exists():
            continue
        for path in sorted(base.rglob("*.py")):
            found[_module_name(path)] = path
    return found


def scan(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every import `module`'s source makes, wherever it stands."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = function or child.name
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, inner) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - (child.level - 1)]
                    base = ".".join([*parent, base] if base else parent)
                found.append(Import(module, base, child.lineno, inner))
                # `from pkg import sub` imports the module `pkg.sub` when there is one.
                found.extend(
                    Import(module, f"{base}.{a.name}", child.lineno, inner)
                    for a in child.names
                    if a.name != "*"
                )
            elif isinstance(child, ast.Call) and _imports_by_name(child):
                arg = child.args[0]
                assert isinstance(arg, ast.Constant)
                found.append(Import(module, str(arg.value), child.lineno, inner))
            visit(child, inner)

    visit(tree, None)
    return found


def _imports_by_name(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (
        name in {"import_module", "__import__"}
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def all_imports() -> dict[str, list[Import]]:
    modules = our_modules()
    return {
        name: scan(name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
        for name, path in modules.items()
    }


IMPORTS = all_imports()
MODULES = set(IMPORTS)


def ours(imports: list[Import]) -> Iterator[Import]:
    for imp in imports:
        if _top(imp.target) in OURS:
            yield imp


def violations(package: str, allowed: set[str]) -> list[str]:
    return [
        str(imp)
        for name, imports in IMPORTS.items()
        if _top(name) == package
        for imp in ours(imports)
        if _top(imp.target) not in allowed | {package}
    ]


def test_the_scan_sees_every_package() -> None:
    for package in ("auth", "storage", "indexer", "search_api", "crossdoc"):
        assert package in MODULES
    assert "crossdoc.wiring.worker" in MODULES
    assert len(MODULES) > 100


def test_auth_imports_nothing_of_ours() -> None:
    assert violations("auth", set()) == []


def test_storage_imports_nothing_of_ours() -> None:
    assert violations("storage", set()) == []


def test_indexer_imports_only_storage_and_auth() -> None:
    assert violations("indexer", {"storage", "auth"}) == []


def test_services_never_import_the_web_package() -> None:
    if "services" not in MODULES:
        pytest.skip("no services package yet")
    assert [v for v in violations("services", set(OURS) - {"search_api"})] == []


def _closure(roots: list[str]) -> dict[str, list[str]]:
    """Every module of ours loaded from `roots`, each with one chain that loads it."""
    chains: dict[str, list[str]] = {}
    todo = [(root, [root]) for root in roots]
    while todo:
        name, chain = todo.pop()
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            step = ".".join(parts[:i])
            if step not in MODULES or step in chains:
                continue
            chains[step] = chain
            for imp in ours(IMPORTS[step]):
                if (step, imp.function) in API_ENTRY_POINTS:
                    continue
                todo.append((imp.target, [*chains[step], f"{imp.target} (line {imp.line})"]))
    return chains


@pytest.mark.parametrize(
    "root", ["crossdoc.wiring.worker", "crossdoc.cli", "indexer.worker", "crossdoc.wiring.cli"]
)
def test_the_worker_and_the_cli_never_load_the_web_package(root: str) -> None:
    loaded = _closure([root])
    assert root in loaded
    web = {name: " → ".join(chain) for name, chain in loaded.items() if _top(name) == "search_api"}
    assert web == {}


def test_the_serve_command_is_the_one_place_the_cli_loads_the_api() -> None:
    to_web = [imp for imp in IMPORTS["crossdoc.cli"] if _top(imp.target) == "search_api"]
    assert to_web, "the scan should see `serve` load the API"
    assert {(imp.module, imp.function) for imp in to_web} <= API_ENTRY_POINTS


def test_the_scan_finds_imports_wherever_they_stand() -> None:
    """The scanner itself: a rule is only as good as what it sees."""
    source = textwrap.dedent(
        """
        from __future__ import annotations
        import importlib
        from typing import TYPE_CHECKING
        from . import sibling
        from ..other import thing
        if TYPE_CHECKING:
            from search_api.deps import ServicesDep
        def f():
            import search_api.app
            class C:
                def g(self):
                    importlib.import_module("search_api.search")
        """
    )
    found = {(i.target, i.function) for i in scan("indexer.sub.mod", source)}
    assert ("search_api.deps", None) in found  # under TYPE_CHECKING
    assert ("search_api.app", "f") in found  # in a function
    assert ("search_api.search", "f") in found  # by name, in a nested method
    assert ("indexer.sub.sibling", None) in found  # relative
    assert ("indexer.other.thing", None) in found
    imports = scan("auth.bad", "def f():\n    from indexer import worker\n")
    assert [str(i) for i in ours(imports)] == [
        "auth.bad:2 in f() imports indexer",
        "auth.bad:2 in f() imports indexer.worker",
    ]


WORKER_PROCESS = """
import json, sys
from pathlib import Path

from crossdoc.cli import app
from crossdoc.settings import Settings
from crossdoc.wiring.worker import build_worker

try:
    app(["worker"], standalone_mode=False)  # refuses without a broker, as API.md says
except SystemExit:
    pass
except Exception as err:  # click's Exit
    if type(err).__name__ != "Exit":
        raise
services = build_worker(Settings(data_dir=Path(sys.argv[1]), demo=False))
try:
    services.worker.start()
    services.worker.notify(())
    services.worker.ping()  # its loop runs
finally:
    services.close()
# `crossdoc worker` with a broker: its root, Celery app and task (no connection yet).
from crossdoc.wiring.worker import CeleryWorker

celery_worker = CeleryWorker(
    Settings(data_dir=Path(sys.argv[1]), demo=False, broker_url="redis://127.0.0.1:1/0")
)
assert "celery" in sys.modules
celery_worker.queue.close()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "search_api")))
"""


def test_a_worker_process_does_not_load_the_web_package(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WORKER_PROCESS, str(tmp_path / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
