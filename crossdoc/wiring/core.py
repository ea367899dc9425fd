"""What every Crossdoc process builds from settings: the one place that chooses engines.

Settings → catalog, object store, extractor, index, indexing pipeline (`Core`).
Each process has its own composition root on top of this: `crossdoc.wiring.api`
(the API: tokens, passwords, rate limits, the dispatcher), `crossdoc.wiring.worker`
(the indexing worker: no web objects) and `crossdoc.wiring.cli` (the commands).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdoc.settings import Settings
from indexer.errors import AnalysisConfigError
from indexer.extraction.base import TextExtractor
from indexer.index.base import SearchIndex
from indexer.pipeline import IndexingPipeline
from storage.catalog.ports import CatalogStore
from storage.catalog.sql import SqlCatalog
from storage.objectstore.base import ObjectStore

if TYPE_CHECKING:
    from indexer.analysis.korean import KoreanAnalyzer
    from indexer.index.tantivy_index import AnalysisSetup

log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings name an engine or combination Crossdoc cannot run with."""


@dataclass
class Core:
    """The adapters every Crossdoc process works with, built once at start-up."""

    settings: Settings
    catalog: CatalogStore
    store: ObjectStore
    extractor: TextExtractor
    index: SearchIndex
    pipeline: IndexingPipeline
    #: The second site for the originals (`CROSSDOC_REPLICA_URL`), or None. With
    #: `CROSSDOC_REPLICATION=sync`, `store` is a `SyncMirror` writing to both; with
    #: a replica, `store` reads through `storage.fallback.ReplicaFallbackStore`.
    replica_store: ObjectStore | None

    def parts(self) -> dict[str, Any]:
        """The fields, by name: a process's root builds its own services from them."""
        return {f.name: getattr(self, f.name) for f in fields(Core)}

    def close(self) -> None:
        self.extractor.close()
        self.index.close()
        self.catalog.close()


def build_replica_store(settings: Settings, url: str | None = None) -> ObjectStore | None:
    """The object store at `url` (default `CROSSDOC_REPLICA_URL`), None if unset.

    `file:///path` or a plain path: a directory that must exist (an unmounted
    second disk must fail, not fill the first one). `s3://BUCKET` with
    `CROSSDOC_REPLICA_S3_ENDPOINT`, `_ACCESS_KEY`, `_SECRET_KEY`, `_SECURE`,
    `_REGION` (as the primary's `CROSSDOC_S3_*`); the URL's query may give
    `endpoint`, `secure` and `region` instead. Raises `ConfigurationError`.
    """
    url = url if url is not None else settings.replica_url
    if not url:
        return None
    if url.startswith("s3://"):
        return _s3_store_at(settings, url)
    if "://" in url and not url.startswith("file://"):
        raise ConfigurationError(f"replica URL {url!r}: use file://, s3:// or a directory path")
    from storage.objectstore.local import LocalObjectStore

    path = Path(url.removeprefix("file://")).expanduser()
    return LocalObjectStore(path, create_root=False)


def _s3_store_at(settings: Settings, url: str) -> ObjectStore:
    from urllib.parse import parse_qs, urlsplit

    from storage.objectstore.s3 import S3ObjectStore

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    bucket = (parts.netloc + parts.path).strip("/")
    endpoint = query.get("endpoint") or settings.replica_s3_endpoint
    access = settings.replica_s3_access_key or settings.s3_access_key
    secret = settings.replica_s3_secret_key or settings.s3_secret_key
    if not (bucket and endpoint and access and secret):
        raise ConfigurationError(
            "an s3:// replica needs a bucket, CROSSDOC_REPLICA_S3_ENDPOINT (or ?endpoint=), "
            "CROSSDOC_REPLICA_S3_ACCESS_KEY and CROSSDOC_REPLICA_S3_SECRET_KEY"
        )
    # What the replica's own settings leave out is the primary's.
    secure = settings.replica_s3_secure
    if secure is None:
        secure = settings.s3_secure
    if "secure" in query:
        secure = query["secure"].strip().lower() in {"1", "true", "yes", "on"}
    return S3ObjectStore(
        endpoint,
        access.get_secret_value(),
        secret.get_secret_value(),
        bucket,
        secure=secure,
        region=query.get("region") or settings.replica_s3_region or settings.s3_region,
    )


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.uses_s3:
        from storage.objectstore.s3 import S3ObjectStore

        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise ConfigurationError(
                "s3:// storage needs CROSSDOC_S3_ENDPOINT, CROSSDOC_S3_ACCESS_KEY "
                "and CROSSDOC_S3_SECRET_KEY"
            )
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key.get_secret_value(),
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    from storage.objectstore.local import LocalObjectStore

    return LocalObjectStore(settings.objects_dir)


def build_extractor(settings: Settings) -> TextExtractor:
    from indexer.extraction.ocr import OcrConfig

    ocr = OcrConfig(
        enabled=settings.ocr,
        languages=settings.ocr_languages,
        timeout_seconds=settings.ocr_timeout_seconds,
        memory_limit_bytes=settings.ocr_memory_bytes,
        max_pages=settings.ocr_max_pages,
        max_pixels=settings.ocr_max_pixels,
    )
    if settings.tika_url:
        from indexer.extraction.tika_server import TikaServerExtractor

        try:
            return TikaServerExtractor(
                settings.tika_url,
                timeout_seconds=settings.extraction_timeout_seconds,
                memory_limit_bytes=settings.extraction_memory_bytes,
                max_text_chars=settings.extraction_max_text_chars,
                pool_size=settings.extraction_workers,
                ocr=ocr,
                server_ocr=settings.tika_server_ocr,
            )
        except ValueError as err:
            raise ConfigurationError(f"CROSSDOC_TIKA_URL: {err}") from err
    from indexer.extraction.native import NativeTikaExtractor

    return NativeTikaExtractor(
        timeout_seconds=settings.extraction_timeout_seconds,
        memory_limit_bytes=settings.extraction_memory_bytes,
        max_text_chars=settings.extraction_max_text_chars,
        pool_size=settings.extraction_workers,
        ocr=ocr,
    )


def build_index(settings: Settings) -> SearchIndex:
    """The search index the settings name: Tantivy in the data dir (`embedded`),
    or Elasticsearch/OpenSearch at `CROSSDOC_SEARCH_URL` through the alias
    `CROSSDOC_SEARCH_INDEX`. Raises `ConfigurationError` when the engine cannot
    be reached or refuses the index."""
    if settings.search_url != "embedded":
        return _build_elasticsearch_index(settings)
    from indexer.index.tantivy_index import TantivyIndex

    analyzer, analysis, synonyms = _tantivy_analysis(settings)
    return TantivyIndex(
        settings.index_dir,
        analyzer,
        synonyms=synonyms,
        analysis=analysis,
        compound_fallback=settings.compound_fallback,
        # A rebuild (`crossdoc reindex`) reads the user dictionary again.
        fresh_analysis=lambda: _tantivy_analysis(settings),
    )


def _tantivy_analysis(settings: Settings) -> AnalysisSetup:
    """The analyser, its child process (or None) and the synonyms, from the files now."""
    from indexer.analysis.process import AnalysisProcess
    from indexer.analysis.synonyms import SynonymsFile

    analyzer = build_analyzer(settings)
    try:
        synonyms = SynonymsFile(settings.synonyms_path, analyzer)
    except AnalysisConfigError as err:
        raise ConfigurationError(f"CROSSDOC_SYNONYMS: {err}") from err
    # mecab holds the GIL: a child process puts document analysis on another core.
    analysis = (
        AnalysisProcess(analyzer)
        if settings.analysis_process and (os.cpu_count() or 1) > 1
        else None
    )
    return analyzer, analysis, synonyms


def _build_elasticsearch_index(settings: Settings) -> SearchIndex:
    from indexer.analysis.process import AnalysisProcess
    from indexer.errors import SearchUnavailableError
    from indexer.index.elasticsearch import (
        DEFAULT_MAX_RESULT_WINDOW,
        ElasticsearchIndex,
        redacted,
    )

    # Our analyser makes the completion keys and highlights; nori on the node
    # (its own copy of the user dictionary and synonyms) analyses the text.
    analyzer = build_analyzer(settings)
    try:
        return ElasticsearchIndex(
            settings.search_url,
            settings.search_index,
            analyzer,
            # The index's own max_result_window (index-settings.json) bounds it too.
            max_result_window=min(settings.max_result_window, DEFAULT_MAX_RESULT_WINDOW),
            # The completion keys need our analysis of each document: on another core.
            analysis=(
                AnalysisProcess(analyzer)
                if settings.analysis_process and (os.cpu_count() or 1) > 1
                else None
            ),
        )
    except SearchUnavailableError as err:
        where = redacted(settings.search_url)
        raise ConfigurationError(
            f"CROSSDOC_SEARCH_URL: the search engine at {where} is unavailable ({err}); "
            "start it, or set CROSSDOC_SEARCH_URL=embedded"
        ) from err


def build_analyzer(settings: Settings) -> KoreanAnalyzer:
    """The Korean analyser with the configured user dictionary (index and query time).

    Raises `ConfigurationError` when the dictionary cannot be read or parsed.
    """
    from indexer.analysis.korean import KoreanAnalyzer
    from indexer.analysis.user_dictionary import load_user_dictionary

    try:
        return KoreanAnalyzer(user_words=load_user_dictionary(settings.user_dictionary_path))
    except AnalysisConfigError as err:
        raise ConfigurationError(f"CROSSDOC_USER_DICTIONARY: {err}") from err


def build_catalog(settings: Settings) -> CatalogStore:
    """The catalog alone, migrated (for commands that need nothing else)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Async replication queues each new version in the transaction recording it.
    replicate = bool(settings.replica_url) and settings.replication == "async"
    catalog = SqlCatalog(settings.resolved_database_url, replicate=replicate)
    catalog.migrate()
    return catalog


def check_settings(settings: Settings) -> None:
    """Refuse settings unfit to run with (`ConfigurationError`); make the data dir.

    Production checks included, so every process refuses the same configurations.
    """
    problems = settings.check_for_production()
    if problems:
        raise ConfigurationError("; ".join(problems))
    settings.data_dir.mkdir(parents=True, exist_ok=True)


def build_core(settings: Settings) -> Core:
    """Build and start the shared adapters the settings ask for (the catalog is migrated).

    Raises `ConfigurationError` (see `check_settings`).
    """
    check_settings(settings)
    catalog = build_catalog(settings)
    store = build_object_store(settings)
    replica_store = build_replica_store(settings)
    if replica_store is not None and settings.replication == "sync":
        from storage.replica import SyncMirror

        store = SyncMirror(store, replica_store)
    if replica_store is not None:
        from storage.fallback import ReplicaFallbackStore

        # Reads (downloads, extraction) fall back to the replica's verified copy.
        store = ReplicaFallbackStore(store, replica_store, catalog, settings.spool_dir)
    extractor = build_extractor(settings)
    index = build_index(settings)
    if index.schema_rebuilt:
        # An index of an older release (e.g. without the compound fallback's
        # grams) was emptied: index every document again from the record.
        catalog.documents.mark_all_for_reindex()
    pipeline = IndexingPipeline(
        catalog,
        store,
        extractor,
        index,
        settings.spool_dir,
        batch_text_bytes=settings.worker_batch_text_bytes,
    )
    return Core(
        settings=settings,
        catalog=catalog,
        store=store,
        extractor=extractor,
        index=index,
        pipeline=pipeline,
        replica_store=replica_store,
    )
