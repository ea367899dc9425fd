"""Building the adapters from settings: the one place that chooses engines.

`search_api.app.create_app` (the API process) and the worker bootstrap each call
`build_services` once; every other module receives what it needs explicitly.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from auth.keys import FileKeyRing, KeyRingError
from auth.passwords import Passwords
from auth.ratelimit import (
    InProcessRateLimiter,
    NoRateLimiter,
    RateLimiter,
    RateRule,
    RateRules,
)
from auth.tokens import TokenService
from crossdoc.settings import Settings
from indexer.dispatch import Dispatcher
from indexer.errors import AnalysisConfigError
from indexer.extraction.base import TextExtractor
from indexer.index.base import SearchIndex
from indexer.pipeline import IndexingPipeline
from storage.catalog.ports import CatalogStore
from storage.catalog.sql import SqlCatalog
from storage.objectstore.base import ObjectStore

if TYPE_CHECKING:
    from indexer.analysis.korean import KoreanAnalyzer

log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings name an engine or combination Crossdoc cannot run with."""


@dataclass
class Services:
    """Everything a Crossdoc process works with, built once at start-up."""

    settings: Settings
    catalog: CatalogStore
    store: ObjectStore
    extractor: TextExtractor
    index: SearchIndex
    tokens: TokenService
    passwords: Passwords
    pipeline: IndexingPipeline
    limiter: RateLimiter = field(default_factory=NoRateLimiter)
    rate_rules: RateRules = field(default_factory=RateRules)
    dispatcher: Dispatcher | None = None
    closers: list[object] = field(default_factory=list)

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.extractor.close()
        self.index.close()
        self.catalog.close()


def _secret_file(path: Path) -> str:
    """A secret generated once and kept (mode 0600) in the data dir."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


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
    if settings.tika_url:
        raise ConfigurationError(
            "CROSSDOC_TIKA_URL (Tika server) is not supported by this build yet; "
            "unset it to use the embedded extractor"
        )
    from indexer.extraction.native import NativeTikaExtractor
    from indexer.extraction.ocr import OcrConfig

    return NativeTikaExtractor(
        timeout_seconds=settings.extraction_timeout_seconds,
        memory_limit_bytes=settings.extraction_memory_bytes,
        max_text_chars=settings.extraction_max_text_chars,
        pool_size=settings.extraction_workers,
        ocr=OcrConfig(
            enabled=settings.ocr,
            languages=settings.ocr_languages,
            timeout_seconds=settings.ocr_timeout_seconds,
            memory_limit_bytes=settings.ocr_memory_bytes,
            max_pages=settings.ocr_max_pages,
            max_pixels=settings.ocr_max_pixels,
        ),
    )


def build_index(settings: Settings) -> SearchIndex:
    if settings.search_url != "embedded":
        raise ConfigurationError(
            "CROSSDOC_SEARCH_URL other than 'embedded' (Elasticsearch) is not supported by "
            "this build yet"
        )
    from indexer.analysis.process import AnalysisProcess
    from indexer.analysis.synonyms import SynonymsFile
    from indexer.index.tantivy_index import TantivyIndex

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
    return TantivyIndex(
        settings.index_dir,
        analyzer,
        synonyms=synonyms,
        analysis=analysis,
        compound_fallback=settings.compound_fallback,
    )


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


def build_tokens(settings: Settings) -> TokenService:
    secret = (
        settings.jwt_secret.get_secret_value()
        if settings.jwt_secret is not None
        else _secret_file(settings.data_dir / "jwt-secret")
    )
    access_ttl = timedelta(minutes=settings.access_token_minutes)
    refresh_ttl = timedelta(hours=settings.refresh_token_hours)
    try:
        keys = FileKeyRing(settings.keys_file, secret, max(access_ttl, refresh_ttl))
    except KeyRingError as err:
        raise ConfigurationError(str(err)) from err
    return TokenService(keys, access_ttl=access_ttl, refresh_ttl=refresh_ttl)


def build_rate_rules(settings: Settings) -> RateRules:
    def per_minute(name: str, capacity: int) -> RateRule | None:
        return RateRule(name, capacity, 60.0) if capacity else None

    failures = settings.rate_sign_in_failures_per_user
    return RateRules(
        sign_in_per_address=per_minute("sign_in", settings.rate_sign_in_per_address),
        sign_in_failures_per_user=(
            RateRule(
                "sign_in_failures", failures, settings.rate_sign_in_failure_window_minutes * 60.0
            )
            if failures
            else None
        ),
        search_per_user=per_minute("search", settings.rate_search_per_user),
        search_per_address=per_minute("search", settings.rate_search_per_address),
        download_per_user=per_minute("download", settings.rate_download_per_user),
        download_per_address=per_minute("download", settings.rate_download_per_address),
    )


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """In-process buckets: right for one API process (a shared store for several is planned)."""
    return InProcessRateLimiter() if settings.rate_limits else NoRateLimiter()


def build_catalog(settings: Settings) -> CatalogStore:
    """The catalog alone, migrated (for commands that need nothing else)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(settings.resolved_database_url)
    catalog.migrate()
    return catalog


def build_services(settings: Settings, *, passwords: Passwords | None = None) -> Services:
    """Build and start every adapter the settings ask for (the catalog is migrated)."""
    problems = settings.check_for_production()
    if problems:
        raise ConfigurationError("; ".join(problems))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.broker_url:
        raise ConfigurationError(
            "CROSSDOC_BROKER_URL (Celery) is not supported by this build yet; unset it to "
            "index in-process"
        )
    tokens = build_tokens(settings)
    catalog = build_catalog(settings)
    store = build_object_store(settings)
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
    return Services(
        settings=settings,
        catalog=catalog,
        store=store,
        extractor=extractor,
        index=index,
        tokens=tokens,
        passwords=passwords or Passwords(),
        pipeline=pipeline,
        limiter=build_rate_limiter(settings),
        rate_rules=build_rate_rules(settings),
    )
