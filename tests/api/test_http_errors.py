"""Every error the API process sends is in the JSON error shape, the server layer's too.

Malformed requests are sent as raw bytes over a socket (no client would send them),
to the real server run with `crossdoc serve`'s uvicorn options.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from urllib.parse import quote

import httpx
import pytest

from search_api.protocol import MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_TARGET_BYTES
from tests.conftest import Server


@pytest.fixture(scope="module")
def member(server: Server) -> str:
    return server.user("kwon", "HTTP-A", ministry="HTTP")


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return bool(sep and length and len(body) >= int(length.group(1)))


def _raw(server: Server, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (a request without a body) as is; the status, headers and body."""
    host, port = server.base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        with contextlib.suppress(OSError):  # it may answer and close before reading it all
            sock.sendall(head)
        try:
            while not _complete(answer) and (chunk := sock.recv(65536)):
                answer += chunk
        except ConnectionResetError:
            pass  # it closed with our unread bytes pending: its answer came first
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _get(server: Server, target: bytes, token: str, extra: bytes = b"") -> bytes:
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n" + extra + b"Connection: close\r\n\r\n"
    )


def _error(headers: dict[str, str], body: bytes) -> dict[str, str]:
    assert headers["content-type"] == "application/json", headers
    error: dict[str, str] = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    return error


def test_raw_utf8_in_the_query_string_gets_a_json_400(server: Server, member: str) -> None:
    # Per RFC 3986 non-ASCII must be percent-encoded (browsers do); curl sends it raw.
    target = "/api/v1/search?q=출생신고".encode()
    status, headers, body = _raw(server, _get(server, target, server.token(member)))
    assert status == 400
    error = _error(headers, body)
    assert error["code"] == "bad_request" and "percent-encoded" in error["message"]


def test_a_garbled_request_line_gets_a_json_400(server: Server) -> None:
    status, headers, body = _raw(server, b"\x16\x03\x01 hello\r\n\r\n")
    assert status == 400
    assert _error(headers, body)["code"] == "bad_request"


def test_a_percent_encoded_hangul_query_too_long_for_a_url_gets_a_json_414(
    server: Server, member: str
) -> None:
    # 10,000 Hangul syllables are 90,000 bytes once encoded: beyond any URL we read.
    target = b"/api/v1/search?q=" + quote("가" * 10_000).encode()
    assert len(target) > MAX_REQUEST_TARGET_BYTES
    status, headers, body = _raw(server, _get(server, target, server.token(member)))
    assert status == 414
    assert _error(headers, body)["code"] == "uri_too_long"


def test_a_long_hangul_query_that_fits_in_a_url_gets_the_apps_json_422(
    server: Server, member: str
) -> None:
    target = b"/api/v1/search?q=" + quote("가" * 3_000).encode()
    status, headers, body = _raw(server, _get(server, target, server.token(member)))
    assert status == 422
    assert _error(headers, body)["code"] == "validation_error"


def test_a_request_head_over_the_limit_gets_a_json_431(server: Server, member: str) -> None:
    big = b"X-Padding: " + b"a" * (MAX_REQUEST_HEAD_BYTES + 1024) + b"\r\n"
    status, headers, body = _raw(server, _get(server, b"/api/v1/me", server.token(member), big))
    assert status == 431
    assert _error(headers, body)["code"] == "request_header_fields_too_large"


def test_a_large_head_within_the_limit_reaches_the_app(server: Server, member: str) -> None:
    padding = b"X-Padding: " + b"a" * (100 * 1024) + b"\r\n"
    status, _, body = _raw(server, _get(server, b"/api/v1/me", server.token(member), padding))
    assert status == 200 and json.loads(body)["username"] == member


def test_a_websocket_upgrade_gets_a_json_answer(server: Server) -> None:
    status, headers, body = _raw(
        server,
        b"GET /api/v1/me HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
    )
    assert status == 401
    assert _error(headers, body)["code"] == "invalid_token"


def test_the_server_still_serves_after_refusing(server: Server, member: str) -> None:
    _raw(server, b"\x16\x03\x01 hello\r\n\r\n")
    with server.client(member) as c:
        assert c.get("/me").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/documents/0123456789abcdef", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/documents/0123456789abcdef/content", {"GET", "PUT"}),
        ("DELETE", "/api/v1/documents/0123456789abcdef/acl", {"GET", "PUT"}),
        ("PUT", "/api/v1/admin/ministries", {"GET", "POST"}),
        ("POST", "/api/v1/admin/policies/1", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/api/v1/search", {"GET"}),
    ],
)
def test_405_names_every_method_the_path_allows(
    server: Server, member: str, method: str, path: str, allowed: set[str]
) -> None:
    r = httpx.request(
        method, server.base_url + path, headers={"Authorization": f"Bearer {server.token(member)}"}
    )
    assert r.status_code == 405
    assert set(re.split(r",\s*", r.headers["allow"])) == allowed
    assert r.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("value", ["0.5", "1700000000", "yesterday"])
def test_audit_times_are_iso_8601_only(server: Server, value: str) -> None:
    with server.client("admin") as c:
        for name in ("since", "until"):
            r = c.get("/admin/audit", params={name: value})
            assert r.status_code == 422, r.text
            assert "ISO 8601" in r.json()["error"]["message"]
        assert c.get("/admin/audit", params={"until": "2099-01-01T00:00:00+09:00"}).is_success
        assert c.get("/admin/audit", params={"since": "2026-11-01"}).is_success


def test_grant_principals_are_accepted_exactly_as_the_schema_says(
    server: Server, member: str
) -> None:
    schema = httpx.get(f"{server.base_url}/api/v1/openapi.json").json()
    pattern = re.compile(
        schema["components"]["schemas"]["GrantIO"]["properties"]["principal"]["pattern"]
    )
    doc = server.upload(member, b"grants", "g.txt", wait=False)
    principals = [
        "user:kwon", "dept:HTTP-A", "ministry:HTTP", "user:한글", "user:a:b",
        "user:", "group:x", "user: a", "user:a\n", "user:a\x1c", "user:a\ufeff", "USER:a",
    ]  # fmt: skip
    with server.client(member) as c:
        for principal in principals:
            r = c.put(
                f"/documents/{doc['id']}/acl",
                json={"visibility": "department", "grants": [{"principal": principal}]},
            )
            # A well-formed principal is accepted when it names someone (else it is
            # refused as unknown); a malformed one is refused as invalid.
            if pattern.fullmatch(principal):
                exists = principal in ("user:kwon", "dept:HTTP-A", "ministry:HTTP")
                want = (200, None) if exists else (422, "unknown_grantee")
            else:
                want = (422, "validation_error")
            code = r.json()["error"]["code"] if r.status_code != 200 else None
            assert (r.status_code, code) == want, (principal, r.text)


def test_the_schema_documents_every_error_in_the_error_shape(server: Server) -> None:
    schema = httpx.get(f"{server.base_url}/api/v1/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "security" in operation:
                assert "401" in responses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/ErrorOut"}, (path, status)
    upload = schema["paths"]["/api/v1/documents"]["post"]["responses"]
    assert {"400", "403", "409", "413", "415", "422", "507"} <= set(upload)
    new_version = schema["paths"]["/api/v1/documents/{document_id}/content"]["put"]["responses"]
    assert {"400", "404", "413", "415", "422", "507"} <= set(new_version)
    admin_only = schema["paths"]["/api/v1/admin/users"]["post"]["responses"]
    assert {"401", "403", "409", "422"} <= set(admin_only)
    download = schema["paths"]["/api/v1/documents/{document_id}/content"]["get"]["responses"]
    assert {"404", "429"} <= set(download)
    assert "*/*" in download["200"]["content"]
    assert {"Content-Disposition", "X-Content-Type-Options"} <= set(download["200"]["headers"])
