"""The OpenAPI schema and the running API agree: a bounded schemathesis run over real HTTP.

Every operation is exercised, as a member and as an admin, with schema-valid
(positive) and schema-invalid (negative) requests, then again on a document and a
policy that exist. Each answer must be documented (status code, media type, body
schema, headers) and never a 5xx; a request the schema calls invalid must be refused;
on the caller's own document, a request the schema calls valid must be accepted.
Bounded: a few examples per operation and pass, fixed seed (derandomized), no
shrinking; about 45 s for both roles on 2 cores.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup

from tests.conftest import Server, start_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 6
#: On the full stack leg each request crosses PostgreSQL and OpenSearch: half as many
#: examples keep it within its time (each operation and mode is still tried).
MAX_EXAMPLES_FULL_STACK = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# These would end the very sign-in the run uses (the token in the Authorization header).
SKIPPED = {("POST", "/api/v1/auth/logout")}


@pytest.fixture(scope="module")
def server(stack: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    del stack  # a dependency only: started again for each stack (tests/api/conftest.py)
    # Generous rate limits: the run is fast and single-user, and throttling is tested elsewhere.
    yield from start_server(tmp_path_factory.mktemp("crossdoc"), max_upload_bytes=1024 * 1024)


@dataclass(frozen=True)
class Caller:
    token: str
    #: Path parameters naming things that exist and that this caller may use.
    existing: dict[str, Any]


@pytest.fixture(scope="module")
def callers(server: Server) -> dict[str, Caller]:
    server.user("member", "CONF-A", ["member"], ministry="CONF")
    doc = server.upload("member", b"conformance", "a.txt", title="conformance", tags="t")
    with server.client("admin") as c:
        policy = c.post(
            "/admin/policies",
            json={"name": "p", "match": {"tag": "t"}, "grant": {"principal": "dept:CONF-A"}},
        ).json()
    return {
        "member": Caller(server.token("member"), {"document_id": doc["id"], "version": 1}),
        "admin": Caller(server.token("admin"), {"policy_id": policy["id"], "username": "member"}),
    }


def _form_field_type_only(case: Case, failure: Failure) -> bool:
    """An accepted negative case whose only invalidity is a multipart form field's type.

    Form fields are text on the wire: a `tags` made an integer arrives as the string
    "1", a valid value, so the server cannot (and need not) refuse it.
    """
    violations = [line for line in failure.message.splitlines() if "violates `" in line]
    return (
        isinstance(failure, AcceptedNegativeData)
        and case.media_type == "multipart/form-data"
        and bool(violations)
        and all("violates `type`" in line for line in violations)
    )


ACL_PATH = "/api/v1/documents/{document_id}/acl"


def _first_failure(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    path_parameters: dict[str, Any] | None,
    max_examples: int = MAX_EXAMPLES,
) -> str | None:
    """The first failure of a few `mode` requests to `operation`, or None."""
    if mode is GenerationMode.NEGATIVE:
        checks = [*CHECKS, negative_data_rejection]
    elif (
        path_parameters
        and "document_id" in path_parameters
        and (operation.method.upper(), operation.path) != ("PUT", ACL_PATH)
    ):
        # On a document the caller manages, a schema-valid request names nothing that
        # must exist elsewhere, so it must be accepted. (Admin bodies, and an ACL's
        # grants, name departments and principals that must exist, and an ACL's
        # expiries must lie ahead: a schema cannot say which.)
        checks = [*CHECKS, positive_data_acceptance]
    else:
        checks = CHECKS
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case) -> None:
        if failures:
            return
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=checks)
        except FailureGroup as err:
            if all(_form_field_type_only(case, failure) for failure in err.exceptions):
                return
            failures.append(f"{err}\n{case.as_curl_command(headers=headers)}")

    # Unsatisfiable: nothing to make invalid (an operation without parameters or body).
    with contextlib.suppress(Unsatisfiable):
        check()
    return failures[0] if failures else None


def _run(
    schema: Any, base_url: str, caller: Caller, max_examples: int = MAX_EXAMPLES
) -> dict[str, str]:
    """Run every operation, positive then negative, then again on things that exist.

    Returns the first failure of each operation and pass.
    """
    headers = {"Authorization": f"Bearer {caller.token}"}
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        method = operation.method.upper()
        if (method, operation.path) in SKIPPED:
            continue
        names = set(re.findall(r"{(\w+)}", operation.path))
        passes: list[tuple[str, GenerationMode, dict[str, Any] | None]] = [
            ("positive", GenerationMode.POSITIVE, None),
            ("negative", GenerationMode.NEGATIVE, None),
        ]
        if names and names <= set(caller.existing) and method != "DELETE":
            # Random ids only ever meet 404: also ask about things that exist (a real
            # document's metadata, content, versions and ACL; a real policy).
            existing = {name: caller.existing[name] for name in names}
            passes.append(("existing", GenerationMode.POSITIVE, existing))
            passes.append(("existing negative", GenerationMode.NEGATIVE, existing))
        for label, mode, path_parameters in passes:
            failure = _first_failure(
                operation, mode, base_url, headers, path_parameters, max_examples
            )
            if failure is not None:
                failures[f"{label} {method} {operation.path}"] = failure
    return failures


@pytest.mark.parametrize("role", ["member", "admin"])
def test_the_api_answers_as_its_schema_says(
    server: Server, callers: dict[str, Caller], role: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/v1/openapi.json")
    examples = MAX_EXAMPLES if server.worker is None else MAX_EXAMPLES_FULL_STACK
    failures = _run(schema, server.base_url, callers[role], examples)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in sorted(failures.items()))
