"""Every API test runs on two stacks (`stack`): the embedded default, and the full
scale-out stack (OpenSearch, Tika server, Celery on Redis with a real `crossdoc
worker`, PostgreSQL, S3 on moto; see tests/api/full_stack.py).

The full leg skips, naming the settings it lacks, unless `infra/dev/engines up`
has run. A module that cannot run on it (it stops processes or fills disks the
full stack does not use, or chooses its engines itself) is marked
`pytest.mark.embedded_only("why")`: its full leg skips with that reason.

A module-scoped fixture that starts a server must depend on `stack`, so that pytest
starts it again for the second leg.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import conftest as shared
from tests.conftest import Server, start_server

STACKS = ("embedded", "full")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only(reason): the module runs on the embedded stack only, for this reason",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("embedded_only")
    params = []
    for name in STACKS:
        marks = []
        if name == "full" and marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            marks.append(pytest.mark.skip(reason=f"embedded stack only: {reason}"))
        params.append(pytest.param(name, marks=marks, id=name))
    metafunc.parametrize("stack", params, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def stack(request: pytest.FixtureRequest) -> Iterator[str]:
    """The stack this module's servers run on (see the module doc)."""
    name: str = request.param
    if name == "embedded":
        yield name
        return
    from tests.api.full_stack import FullStack, require_full_stack

    require_full_stack()  # or skip, naming what is missing
    full = FullStack(template=request.getfixturevalue("catalog_template"))
    shared.FULL_STACK.append(full)
    try:
        yield name
    finally:
        shared.FULL_STACK.remove(full)
        full.close()


@pytest.fixture(scope="session")
def catalog_template() -> Iterator[str]:
    """The full leg's migrated PostgreSQL template (tests/api/full_stack.py)."""
    from tests.api.full_stack import migrated_template

    yield from migrated_template()


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module and stack (fresh data dir), small upload limit for
    the 413 tests."""
    del stack  # a dependency only: the server is started again for each stack
    yield from start_server(tmp_path_factory.mktemp("crossdoc"), max_upload_bytes=8 * 1024 * 1024)
