"""The relevance sets run on every search engine: Tantivy, and Elasticsearch/OpenSearch
when `CROSSDOC_TEST_ELASTICSEARCH_URL` names a node (each run on a fresh index)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", params=["tantivy", "elasticsearch"])
def elasticsearch_url(request: pytest.FixtureRequest) -> str | None:
    """None for Tantivy; the node's URL for the Elasticsearch/OpenSearch leg."""
    if request.param == "tantivy":
        return None
    url = os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL")
    if not url:
        pytest.skip("set CROSSDOC_TEST_ELASTICSEARCH_URL to run against Elasticsearch/OpenSearch")
    return url
