"""The targets of a restore and of a drill (issue 13): a drill beside a scale-out
deployment restores into scratch targets of its own kinds and never into the
deployment's own; a bucket is a target only while empty, and a drill's scratch
bucket is emptied again (on an in-process moto S3 server; nothing is mocked)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.backup import RestoreTargets, drill_targets, target_settings
from crossdoc.wiring.core import ConfigurationError
from storage.objectstore.s3 import S3ObjectStore
from storage.objectstore.s3_bucket import S3Bucket
from tests.moto_server import moto_s3_server

PG = "postgresql+psycopg://crossdoc:secret@db.example:5432/crossdoc"


def scale_out(**kw: Any) -> Settings:
    return Settings(
        data_dir=Path("/srv/crossdoc"),
        database_url=PG,
        storage_url="s3://crossdoc-live",
        s3_endpoint="s3.example:9000",
        s3_access_key="key",
        s3_secret_key="secret",
        search_url="http://search.example:9200",
        search_index="crossdoc-documents",
        replica_url="s3://crossdoc-replica",
        **kw,
    )


def test_a_drill_beside_a_scale_out_deployment_never_targets_its_own_engines(
    tmp_path: Path,
) -> None:
    live = scale_out()
    scratch_db = PG.replace("/crossdoc", "/crossdoc_drill")
    targets = drill_targets(live, tmp_path, database_url=scratch_db, bucket="crossdoc-drill")
    assert targets.bucket == "crossdoc-drill" and targets.database_url == scratch_db
    # A scratch alias of its own on the same engine, by default.
    assert targets.search_index and targets.search_index.startswith("crossdoc-documents-drill-")
    restored = target_settings(live, targets)
    assert restored.search_url == live.search_url
    assert restored.search_index == targets.search_index
    assert (
        restored.storage_url == "s3://crossdoc-drill" and restored.s3_endpoint == live.s3_endpoint
    )
    assert restored.database_url == scratch_db and restored.broker_url is None
    assert restored.replica_url is None

    refused = {
        "the live database": {"database_url": PG.replace("secret", "other"), "bucket": "b"},
        "the live bucket": {"database_url": scratch_db, "bucket": "crossdoc-live"},
        "the replica's bucket": {"database_url": scratch_db, "bucket": "crossdoc-replica"},
        "the live alias": {"bucket": "b", "search_index": "crossdoc-documents"},
        "the live rebuild marker": {"bucket": "b", "search_index": "crossdoc-documents-rebuild"},
    }
    for options in refused.values():
        with pytest.raises(ConfigurationError, match="the drill never writes it"):
            drill_targets(live, tmp_path, **options)
    # Originals on S3: the scratch bucket must be named (no guessed bucket names).
    with pytest.raises(ConfigurationError, match="name a scratch bucket"):
        drill_targets(live, tmp_path, database_url=scratch_db)


def test_a_drill_beside_an_embedded_deployment_stays_embedded(tmp_path: Path) -> None:
    targets = drill_targets(Settings(data_dir=tmp_path / "live"), tmp_path / "scratch")
    assert targets == RestoreTargets(tmp_path / "scratch")
    restored = target_settings(Settings(data_dir=tmp_path / "live"), targets)
    assert restored.search_url == "embedded" and restored.storage_url is None
    assert restored.data_dir == tmp_path / "scratch"


def test_the_settings_to_serve_a_restored_deployment_hide_the_password(tmp_path: Path) -> None:
    targets = RestoreTargets(tmp_path, PG, "crossdoc-restored", "crossdoc-restored")
    shown = targets.serve_settings()
    assert shown["CROSSDOC_STORAGE_URL"] == "s3://crossdoc-restored"
    assert shown["CROSSDOC_SEARCH_INDEX"] == "crossdoc-restored"
    assert "secret" not in shown["CROSSDOC_DATABASE_URL"]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


def test_a_bucket_is_a_target_while_empty_and_a_scratch_bucket_is_emptied(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = S3Bucket(moto_endpoint, "key", "secret", "scratch", secure=False)
    assert not bucket.exists() and bucket.is_empty()  # absent: the restore makes it
    store = S3ObjectStore(moto_endpoint, "key", "secret", "scratch", secure=False)
    for content in (b"first", b"second"):
        path = tmp_path / "blob"
        path.write_bytes(content)
        store.put_file(path, sha256=hashlib.sha256(content).hexdigest(), size=len(content))
    assert bucket.exists() and not bucket.is_empty()
    # Another bucket on the same server is not touched.
    other = S3Bucket(moto_endpoint, "key", "secret", "other", secure=False)
    other_store = S3ObjectStore(moto_endpoint, "key", "secret", "other", secure=False)
    other_store.put_file(path, sha256=hashlib.sha256(b"second").hexdigest(), size=6)

    assert bucket.remove_all(remove_bucket=False) == 2
    assert bucket.exists() and bucket.is_empty()
    assert bucket.remove_all(remove_bucket=True) == 0
    assert not bucket.exists()
    assert not other.is_empty()
