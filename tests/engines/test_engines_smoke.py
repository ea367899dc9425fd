"""Smoke tests of the scale-out engines started by `infra/dev/engines up`.

Each test checks one real engine the way the product will use it: OpenSearch with our
nori plugin and the project's index settings, Tika server extracting Korean text,
Redis as Celery's broker, PostgreSQL under the catalog's migrations, moto's S3 server
under our S3 object store. Each skips, naming the variable, when its engine is not
running; `.ci/run` starts them all, so in CI none skips.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pg_databases import ThrowawayDatabases

ROOT = Path(__file__).resolve().parents[2]
INDEX_SETTINGS = ROOT / "infra" / "elasticsearch" / "index-settings.json"


def _engine_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(
            f"{name} is not set: run `infra/dev/engines up` and `source .cache/engines/env.sh`"
        )
    return value


# -- OpenSearch + nori -------------------------------------------------------------


@pytest.fixture
def opensearch() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=_engine_env("CROSSDOC_TEST_ELASTICSEARCH_URL"), timeout=60) as c:
        yield c


@pytest.fixture
def crossdoc_index(opensearch: httpx.Client) -> Iterator[str]:
    """An index created with the project's index settings, unchanged; deleted afterwards."""
    name = f"crossdoc-smoke-{uuid.uuid4().hex[:12]}"
    response = opensearch.put(f"/{name}", content=INDEX_SETTINGS.read_bytes(), headers=_JSON)
    assert response.status_code == 200, response.text
    yield name
    opensearch.delete(f"/{name}")


_JSON = {"content-type": "application/json"}


def _tokens(client: httpx.Client, path: str, body: dict[str, object]) -> list[str]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return [t["token"] for t in response.json()["tokens"]]


def test_opensearch_is_2_19_1_on_lucene_9_12_1(opensearch: httpx.Client) -> None:
    version = opensearch.get("/").json()["version"]
    assert (version["distribution"], version["number"]) == ("opensearch", "2.19.1")
    assert version["lucene_version"] == "9.12.1"


def test_project_index_settings_analyse_korean(
    opensearch: httpx.Client, crossdoc_index: str
) -> None:
    text = "행정안전부는 출생신고 제도를"
    index_tokens = _tokens(
        opensearch,
        f"/{crossdoc_index}/_analyze",
        {"analyzer": "crossdoc_korean_index", "text": text},
    )
    # The user dictionary keeps the ministry whole (mecab-ko-dic alone reads 행정/안전/부,
    # as the plain `nori` analyzer shows below); particles (는, 를) are dropped.
    assert index_tokens == ["행정안전부", "출생", "신고", "제도"]
    plain = _tokens(opensearch, "/_analyze", {"analyzer": "nori", "text": text})
    assert "행정안전부" not in plain
    assert plain[:3] == ["행정", "안전", "부"]

    # Search side: synonym_graph over the synonyms file.
    search_tokens = _tokens(
        opensearch,
        f"/{crossdoc_index}/_analyze",
        {"analyzer": "crossdoc_korean_search", "text": "행안부"},
    )
    assert {"행안부", "행정안전부", "행정자치부"} <= set(search_tokens)


def test_project_index_finds_a_document_by_a_synonym(
    opensearch: httpx.Client, crossdoc_index: str
) -> None:
    doc = {
        "id": "d1",
        "title": "출생통보제 안내",
        "body": "행정안전부는 출생신고 제도를 개선한다.",
        "readers": ["dept:MOIS-REC"],
    }
    response = opensearch.put(f"/{crossdoc_index}/_doc/d1?refresh=true", json=doc)
    assert response.status_code in (200, 201), response.text
    for query in ("행안부", "출생 신고", "출생통보제"):
        hits = opensearch.post(
            f"/{crossdoc_index}/_search",
            json={"query": {"match": {"text": query}}},
        ).json()["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["d1"], query


def test_nori_tokenizer_options_match_the_official_plugin(opensearch: httpx.Client) -> None:
    def tokenizer(**options: object) -> dict[str, object]:
        return {"type": "nori_tokenizer", **options}

    # decompound_mode on a dictionary compound: none / discard (default) / mixed.
    assert _tokens(
        opensearch, "/_analyze", {"tokenizer": tokenizer(decompound_mode="none"), "text": "가곡역"}
    ) == ["가곡역"]
    assert _tokens(opensearch, "/_analyze", {"tokenizer": "nori_tokenizer", "text": "가곡역"}) == [
        "가곡",
        "역",
    ]
    assert _tokens(
        opensearch, "/_analyze", {"tokenizer": tokenizer(decompound_mode="mixed"), "text": "가곡역"}
    ) == ["가곡역", "가곡", "역"]
    # A user-dictionary compound in mixed mode: whole and in parts.
    mixed_rules = tokenizer(decompound_mode="mixed", user_dictionary_rules=["출생신고 출생 신고"])
    assert _tokens(opensearch, "/_analyze", {"tokenizer": mixed_rules, "text": "출생신고를"}) == [
        "출생신고",
        "출생",
        "신고",
        "를",
    ]
    # discard_punctuation=false keeps punctuation tokens.
    kept = _tokens(
        opensearch,
        "/_analyze",
        {"tokenizer": tokenizer(discard_punctuation=False), "text": "출생, 신고."},
    )
    assert "," in kept
    assert "." in kept
    # Bad options are refused with the option's name.
    bad = opensearch.post(
        "/_analyze", json={"tokenizer": tokenizer(decompound_mode="bogus"), "text": "가"}
    )
    assert bad.status_code == 400
    assert "decompound_mode" in bad.text
    both = opensearch.post(
        "/_analyze",
        json={
            "tokenizer": tokenizer(
                user_dictionary="analysis/userdict_ko.txt", user_dictionary_rules=["가"]
            ),
            "text": "가",
        },
    )
    assert both.status_code == 400
    assert "user_dictionary_rules" in both.text


def test_nori_token_filters(opensearch: httpx.Client) -> None:
    def analyse(filter_: object, text: str) -> list[str]:
        return _tokens(
            opensearch,
            "/_analyze",
            {"tokenizer": "nori_tokenizer", "filter": [filter_], "text": text},
        )

    assert analyse("nori_number", "삼천이백 원") == ["3200", "원"]
    assert analyse("nori_readingform", "行政") == ["행정"]
    # Default stoptags drop endings and particles; explicit stoptags replace the defaults.
    assert analyse("nori_part_of_speech", "출생신고를 했다") == ["출생", "신고", "하"]
    assert analyse({"type": "nori_part_of_speech", "stoptags": ["NNG"]}, "출생신고를") == ["를"]


# -- Tika server ---------------------------------------------------------------------


@pytest.fixture
def tika() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=_engine_env("CROSSDOC_TEST_TIKA_URL"), timeout=120) as c:
        yield c


def _minimal_docx(paragraph: str) -> bytes:
    """The smallest DOCX Word and Tika accept: content types, one relationship, one body."""
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "word/document.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{ns}"><w:body>'
            f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


def test_tika_extracts_korean_text_and_metadata(tika: httpx.Client) -> None:
    paragraph = "행정안전부는 출생신고 제도를 개선한다"
    docx = _minimal_docx(paragraph)
    text = tika.put("/tika", content=docx, headers={"Accept": "text/plain"})
    assert text.status_code == 200, text.text
    assert paragraph in text.content.decode("utf-8")

    meta = tika.put("/meta", content=docx, headers={"Accept": "application/json"})
    assert meta.status_code == 200, meta.text
    assert meta.json()["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )

    html = "<html><head><title>공지</title></head><body><p>국민디자인단 모집</p></body></html>"
    extracted = tika.put(
        "/tika",
        content=html.encode("utf-8"),
        headers={"Accept": "text/plain", "Content-Type": "text/html; charset=UTF-8"},
    )
    assert extracted.status_code == 200
    assert "국민디자인단 모집" in extracted.content.decode("utf-8")


# -- Redis -----------------------------------------------------------------------------


def test_redis_answers_as_a_celery_broker_would_use_it() -> None:
    import redis

    client = redis.Redis.from_url(_engine_env("CROSSDOC_TEST_REDIS_URL"), socket_timeout=10)
    try:
        assert client.ping()
        queue = f"crossdoc-smoke-{uuid.uuid4().hex}"
        # Celery's Redis transport: LPUSH to the queue, BRPOP by the worker.
        client.lpush(queue, json.dumps({"task": "index", "id": "문서-1"}))
        popped = client.brpop([queue], timeout=5)
        assert popped is not None
        assert json.loads(popped[1])["id"] == "문서-1"
    finally:
        client.close()


# -- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty database on the engines' cluster (the test role may create databases)."""
    with ThrowawayDatabases(_engine_env("CROSSDOC_TEST_DATABASE_URL"), "crossdoc_smoke") as dbs:
        yield dbs.new()


def test_postgres_runs_the_catalog_migrations(fresh_postgres_url: str) -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from storage.catalog.migrate import alembic_config
    from storage.catalog.sql import SqlCatalog

    catalog = SqlCatalog(fresh_postgres_url)
    try:
        with catalog.engine.connect() as conn:
            assert conn.execute(text("SHOW server_version")).scalar_one().startswith("15.")
        catalog.migrate()
        catalog.migrate()  # idempotent
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with catalog.engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
            )
        catalog.organisation.create_ministry("MOIS", "행정안전부")
        catalog.organisation.create_department("MOIS-REC", "기록관리과", "MOIS")
        user = catalog.organisation.create_user("kim.minsu", "hash", "김민수", "MOIS-REC", ["user"])
        assert user.department == "MOIS-REC"
        assert [m.name for m in catalog.organisation.list_ministries()] == ["행정안전부"]
    finally:
        catalog.close()


# -- moto S3 server ----------------------------------------------------------------------


def test_moto_server_stores_and_returns_a_blob(tmp_path: Path) -> None:
    from storage.objectstore.s3 import S3ObjectStore

    endpoint = _engine_env("CROSSDOC_TEST_MOTO_S3_ENDPOINT")
    store = S3ObjectStore(
        endpoint,
        os.environ.get("CROSSDOC_TEST_MOTO_S3_ACCESS_KEY", "crossdoc-test"),
        os.environ.get("CROSSDOC_TEST_MOTO_S3_SECRET_KEY", "crossdoc-test-secret"),
        f"crossdoc-smoke-{uuid.uuid4().hex[:16]}",
        secure=False,
        region=os.environ.get("CROSSDOC_TEST_MOTO_S3_REGION", "us-east-1"),
    )
    payload = "보고서 원본 바이트".encode() * 1000
    source = tmp_path / "보고서.hwp"
    source.write_bytes(payload)
    blob = store.put_file(source, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
    assert store.exists(blob.key)
    with store.open(blob.key) as f:
        assert f.read() == payload
