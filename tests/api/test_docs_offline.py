"""The API documentation works on a closed network: `/docs` and `/redoc` load only
this server's files, under a policy that allows no inline script; the schema is at
`/openapi.json` too; every parameter is described, with an example."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import Server

ASSET = re.compile(r'(?:src|href)="([^"]*)"')
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL)


@pytest.fixture(scope="module")
def schema(server: Server) -> dict[str, Any]:
    r = httpx.get(f"{server.base_url}/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    result: dict[str, Any] = r.json()
    return result


def test_the_schema_is_at_the_root_and_under_the_api(
    server: Server, schema: dict[str, Any]
) -> None:
    assert httpx.get(f"{server.base_url}/api/v1/openapi.json").json() == schema
    assert "/api/v1/search" in schema["paths"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_this_servers_files(server: Server, page: str) -> None:
    r = httpx.get(server.base_url + page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    scripts = SCRIPT.findall(r.text)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assets = ASSET.findall(r.text)
    assert assets
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url  # nothing from elsewhere
        asset = httpx.get(server.base_url + url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    assert "cdn" not in r.text.lower()


def test_a_missing_docs_asset_is_a_json_404(server: Server) -> None:
    r = httpx.get(f"{server.base_url}/docs/assets/nothing-here.js")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_every_parameter_is_described_with_an_example(schema: dict[str, Any]) -> None:
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                described = bool(parameter.get("description"))
                examples = {**parameter, **parameter.get("schema", {})}
                if not described or not ({"example", "examples"} & set(examples)):
                    missing.append(f"{method} {path} {parameter['in']}:{parameter['name']}")
    assert not missing, missing


def test_the_search_parameters_examples_are_valid_searches(
    server: Server, schema: dict[str, Any]
) -> None:
    server.user("docs.kim", "DOCS-A", ministry="DOCS")
    parameters = schema["paths"]["/api/v1/search"]["get"]["parameters"]
    names = {p["name"] for p in parameters}
    assert {"q", "department", "ministry", "content_type", "tag", "from", "to", "sort"} <= names
    assert {"page", "size"} <= names
    with server.client("docs.kim") as c:
        for parameter in parameters:
            values = parameter.get("examples") or parameter["schema"].get("examples")
            values = values or [parameter["example"]]
            assert parameter["description"], parameter
            for value in values:
                r = c.get("/search", params={parameter["name"]: value})
                assert r.status_code == 200, (parameter["name"], value, r.text)
