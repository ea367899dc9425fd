"""Fixtures for the contract suites: one fixture per port, parametrised over its adapters.

Live legs (a real server named in the environment) skip with the variable to set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.process import AnalysisProcess
from indexer.index.base import SearchIndex
from indexer.index.elasticsearch import ElasticsearchIndex
from indexer.index.tantivy_index import TantivyIndex
from storage.objectstore.base import ObjectStore
from storage.objectstore.local import LocalObjectStore
from storage.objectstore.s3 import S3ObjectStore
from tests.moto_server import moto_s3_server

# -- object store ------------------------------------------------------------------

_MOTO_KEYS = ("crossdoc-test", "crossdoc-test-secret")


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """`host:port` of an in-process S3 protocol server (moto) on 127.0.0.1, one per session."""
    with moto_s3_server() as endpoint:
        yield endpoint


def _live_minio() -> tuple[str, str, str, bool, str | None] | None:
    endpoint = os.environ.get("CROSSDOC_TEST_S3_ENDPOINT")
    if not endpoint:
        return None
    secure = os.environ.get("CROSSDOC_TEST_S3_SECURE", "false").strip().lower()
    return (
        endpoint,
        os.environ.get("CROSSDOC_TEST_S3_ACCESS_KEY", ""),
        os.environ.get("CROSSDOC_TEST_S3_SECRET_KEY", ""),
        secure in {"1", "true", "yes", "on"},
        os.environ.get("CROSSDOC_TEST_S3_REGION") or None,
    )


def _remove_test_bucket(client: Minio, bucket: str) -> None:
    """Drop a bucket this test created (test data only; the product never deletes)."""
    if not client.bucket_exists(bucket):
        return
    for obj in client.list_objects(bucket, recursive=True):
        if obj.object_name is not None:
            client.remove_object(bucket, obj.object_name)
    client.remove_bucket(bucket)


@pytest.fixture(params=["local", "s3-moto", "s3-minio"])
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """Every ObjectStore adapter, each empty: local dir, S3 on moto, real MinIO if configured.

    Each S3 test gets its own bucket, created by the adapter (`create_bucket=True`).
    """
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "objects")
        return
    if request.param == "s3-moto":
        endpoint = request.getfixturevalue("moto_s3_endpoint")
        access_key, secret_key = _MOTO_KEYS
        secure = False
        region: str | None = "us-east-1"
    else:
        live = _live_minio()
        if live is None:
            pytest.skip("set CROSSDOC_TEST_S3_ENDPOINT to run against real MinIO")
        endpoint, access_key, secret_key, secure, region = live
    bucket = f"crossdoc-test-{uuid.uuid4().hex[:16]}"
    yield S3ObjectStore(endpoint, access_key, secret_key, bucket, secure=secure, region=region)
    _remove_test_bucket(
        Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure), bucket
    )


# -- search index ------------------------------------------------------------------

#: Behaviour an engine does not support, by engine: {engine: {feature: why}}. A
#: contract test for such a feature calls `skip_if_gap` so the gap is declared here,
#: never silent.
SEARCH_INDEX_GAPS: dict[str, dict[str, str]] = {
    "tantivy": {},
    "tantivy-analysis-process": {},
    "elasticsearch": {},
}


def skip_if_gap(engine: str, feature: str) -> None:
    """Skip the calling test when `engine` declares `feature` as a gap."""
    reason = SEARCH_INDEX_GAPS.get(engine, {}).get(feature)
    if reason is not None:
        pytest.skip(f"{engine} does not support {feature}: {reason}")


@pytest.fixture(scope="session")
def korean_analyzer() -> KoreanAnalyzer:
    """One mecab-backed analyser for the session (loading the dictionary takes a moment)."""
    return KoreanAnalyzer()


class _SessionAnalysisProcess(AnalysisProcess):
    """One child for the whole session: an index closing does not stop it."""

    def close(self) -> None:
        pass

    def stop(self) -> None:
        super().close()


@pytest.fixture(scope="session")
def analysis_process(korean_analyzer: KoreanAnalyzer) -> Iterator[AnalysisProcess]:
    """Document analysis in a child process, shared by the tests of the session."""
    process = _SessionAnalysisProcess(korean_analyzer)
    yield process
    process.stop()


@pytest.fixture(params=["tantivy", "tantivy-analysis-process", "elasticsearch"])
def search_engine(request: pytest.FixtureRequest) -> str:
    """The name of the search engine under test (a key of SEARCH_INDEX_GAPS)."""
    return str(request.param)


@pytest.fixture
def search_index(
    request: pytest.FixtureRequest,
    search_engine: str,
    tmp_path: Path,
    korean_analyzer: KoreanAnalyzer,
) -> Iterator[SearchIndex]:
    """Every SearchIndex adapter, each empty: Tantivy in a temp dir, Elasticsearch if configured."""
    if search_engine.startswith("tantivy"):
        analysis = (
            request.getfixturevalue("analysis_process")
            if search_engine == "tantivy-analysis-process"
            else None
        )
        index = TantivyIndex(tmp_path / "search-index", korean_analyzer, analysis=analysis)
        yield index
        index.close()
        return
    if not os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL"):
        pytest.skip("set CROSSDOC_TEST_ELASTICSEARCH_URL to run against real Elasticsearch")
    es_index = ElasticsearchIndex(
        os.environ["CROSSDOC_TEST_ELASTICSEARCH_URL"],
        f"crossdoc-test-{uuid.uuid4().hex}",
        korean_analyzer,
    )
    try:
        yield es_index
    finally:
        es_index.drop()
        es_index.close()
