"""Settings, read from `CROSSDOC_*` environment variables (shared API.md), validated at start.

This is the only module that reads the environment. Everything else receives the
values it needs through constructors.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def shipped_analysis_file(name: str) -> Path:
    """A file of infra/analysis as installed with the package (package data)."""
    return Path(str(resources.files("infra.analysis").joinpath(name)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROSSDOC_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./crossdoc-data")

    admin_password: SecretStr | None = None
    #: Create a small demo organisation (ministries, departments, users) on first start.
    demo: bool = True

    database_url: str | None = None  # default: SQLite in the data dir
    storage_url: str | None = None  # default: file:// in the data dir; or s3://BUCKET
    s3_endpoint: str | None = None
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = True
    s3_region: str | None = None
    #: `embedded` (Tantivy in the data dir) or `http(s)://host:port` of
    #: Elasticsearch 8 / OpenSearch 2 with nori (the engine is told by `GET /`).
    search_url: str = "embedded"
    #: The alias Crossdoc reads and writes on Elasticsearch/OpenSearch (it points
    #: at a versioned index created from infra/elasticsearch/index-settings.json).
    search_index: str = Field(default="crossdoc-documents", pattern=r"^[a-z0-9][a-z0-9_.-]{0,200}$")
    #: An Apache Tika server (http://host:9998) instead of the embedded extractor.
    tika_url: str | None = None
    #: With a Tika server: let it OCR images itself, instead of our OCR settings below.
    tika_server_ocr: bool = False
    broker_url: str | None = None
    #: `crossdoc serve`: API processes sharing the port (`--workers`). Above 1,
    #: one more process indexes (embedded task queue) and rate limits are shared.
    api_workers: int = Field(default=1, ge=1, le=64)

    #: The second site for the originals (`storage.replication`): a directory on
    #: another disk or mount (`file:///mnt/site-b/crossdoc` or a plain path; it
    #: must exist), or `s3://BUCKET` at another endpoint, with the
    #: `CROSSDOC_REPLICA_S3_*` settings below (as the primary's `CROSSDOC_S3_*`;
    #: `?endpoint=host:port&secure=false&region=R` in the URL also works). Every
    #: original is stored there under the same key as on the primary.
    replica_url: str | None = None
    replica_s3_endpoint: str | None = None
    replica_s3_access_key: SecretStr | None = None
    replica_s3_secret_key: SecretStr | None = None
    #: None: as the primary's (`CROSSDOC_S3_SECURE`, `CROSSDOC_S3_REGION`).
    replica_s3_secure: bool | None = None
    replica_s3_region: str | None = None
    #: `async`: uploads are copied to the replica in the background (the lag is
    #: reported); `sync`: an upload is answered 202 only once both sites hold it.
    replication: Literal["async", "sync"] = "async"
    #: How long a replication claim holds before another replicator may take it
    #: (a replicator killed mid-copy costs at most this long).
    replication_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    #: The background scrub (re-reading every blob on both sites): its read rate,
    #: and the time between passes (0: no background scrub; `crossdoc scrub`).
    scrub_rate_mb_s: float = Field(default=10.0, gt=0)
    scrub_interval_hours: float = Field(default=24.0, ge=0)

    jwt_secret: SecretStr | None = None  # default: generated once and kept in the data dir
    #: Rotated signing keys (`crossdoc keys rotate`); default: `jwt-keys.json` in the data dir.
    jwt_keys_file: Path | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_hours: int = Field(default=12, ge=1, le=24 * 30)

    # Rate limits (token buckets; 0 switches one off). Per minute unless stated.
    rate_limits: bool = True
    rate_sign_in_per_address: int = Field(default=120, ge=0)
    #: Failed sign-ins allowed for one username, from any address, per window.
    rate_sign_in_failures_per_user: int = Field(default=10, ge=0)
    rate_sign_in_failure_window_minutes: int = Field(default=15, ge=1, le=60)
    rate_search_per_user: int = Field(default=120, ge=0)
    rate_search_per_address: int = Field(default=1200, ge=0)
    rate_download_per_user: int = Field(default=120, ge=0)
    rate_download_per_address: int = Field(default=1200, ge=0)

    max_upload_bytes: int = Field(default=512 * MiB, ge=1)
    extraction_timeout_seconds: float = Field(default=60.0, gt=0)
    extraction_memory_bytes: int = Field(default=2048 * MiB, ge=256 * MiB)
    extraction_max_text_chars: int = Field(default=5_000_000, ge=1000)
    extraction_workers: int = Field(default=1, ge=1, le=16)
    #: OCR (Tesseract) of images and image-only PDFs, in the extraction child.
    ocr: bool = True
    ocr_languages: str = Field(default="kor+eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
    ocr_timeout_seconds: float = Field(default=180.0, gt=0)
    ocr_memory_bytes: int = Field(default=1024 * MiB, ge=128 * MiB)
    ocr_max_pages: int = Field(default=20, ge=1, le=1000)
    ocr_max_pixels: int = Field(default=50_000_000, ge=1_000_000, le=1_000_000_000)
    #: Documents indexed per batch (one index commit): at most this many, and,
    #: beyond the first, at most `worker_batch_bytes` of files to extract.
    worker_batch_size: int = Field(default=256, ge=1, le=1000)
    worker_batch_bytes: int = Field(default=64 * MiB, ge=1 * MiB)
    #: Extracted text (UTF-8 bytes) a batch holds at once: beyond it the batch is
    #: indexed in several commits, so its memory follows its text (a compressed
    #: file can hold many times its size in text), not its file sizes.
    worker_batch_text_bytes: int = Field(default=16 * MiB, ge=1 * MiB)
    #: `crossdoc worker` (Celery): tasks run at once in one worker (processes);
    #: above 1 needs a shared search index (the embedded one takes one writer).
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    #: `crossdoc worker`: how often it drains due outbox rows without a message
    #: (a message lost with the broker costs at most this long).
    worker_reconcile_seconds: float = Field(default=10.0, gt=0, le=3600)
    #: Korean analysis of documents in a child process, on another core (embedded
    #: index; ignored on a one-core machine).
    analysis_process: bool = True
    #: Hangul bigrams indexed beside the morphemes, so a word is also found
    #: inside compounds mecab reads otherwise (ranked below morphological
    #: matches). Changing it changes index-time tokens: run `crossdoc reindex`.
    compound_fallback: bool = True

    #: Korean analysis files (see infra/analysis/): the nori-format user dictionary
    #: (changes index-time tokens: reindex after an edit) and the Solr-format
    #: synonyms (query time only: reread when the file changes). Default: the
    #: files shipped in infra/analysis.
    user_dictionary: Path | None = None
    synonyms: Path | None = None

    #: Seconds between catalog snapshots onto the replica (`crossdoc serve` and
    #: `crossdoc backup catalog --every`); 0 turns the built-in schedule off.
    catalog_backup_seconds: float = Field(default=300.0, ge=0, le=86_400)
    #: Catalog snapshots kept on the replica (older ones are removed).
    catalog_backup_keep: int = Field(default=48, ge=1, le=10_000)

    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_result_window: int = Field(default=10_000, ge=100)

    #: Days a deleted document stays in the trash, restorable, before it is purged
    #: from the index and the trash (its original bytes are kept).
    trash_retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("file://", "s3://")):
            raise ValueError("CROSSDOC_STORAGE_URL must start with file:// or s3://")
        return value

    @field_validator("replica_url")
    @classmethod
    def _replica_scheme(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith(("file://", "s3://")):
            raise ValueError("CROSSDOC_REPLICA_URL must be file://, s3:// or a directory path")
        return value or None

    @field_validator("search_url")
    @classmethod
    def _search_scheme(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://")):
            raise ValueError("CROSSDOC_SEARCH_URL must be 'embedded' or an http(s):// URL")
        return value

    # -- derived locations ---------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    @property
    def objects_dir(self) -> Path:
        if self.storage_url and self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir / "objects"

    @property
    def replica_dir(self) -> Path | None:
        """The replica's directory, when the second site is a directory."""
        if self.replica_url and not self.replica_url.startswith("s3://"):
            return Path(self.replica_url.removeprefix("file://"))
        return None

    @property
    def replica_bucket(self) -> str | None:
        """The replica's bucket, when the second site is S3."""
        if self.replica_url and self.replica_url.startswith("s3://"):
            # `s3://BUCKET?endpoint=…`: the bucket only (the query is read by
            # `crossdoc.wiring.core.build_replica_store`).
            return self.replica_url.removeprefix("s3://").partition("?")[0].strip("/")
        return None

    @property
    def user_dictionary_path(self) -> Path:
        """The user dictionary in force: CROSSDOC_USER_DICTIONARY or the shipped one."""
        return self.user_dictionary or shipped_analysis_file("userdict_ko.txt")

    @property
    def synonyms_path(self) -> Path:
        """The synonyms file in force: CROSSDOC_SYNONYMS or the shipped one."""
        return self.synonyms or shipped_analysis_file("synonyms_ko.txt")

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def spool_dir(self) -> Path:
        """Where uploads are staged while they stream in (same disk as the data)."""
        return self.data_dir / "spool"

    @property
    def keys_file(self) -> Path:
        return self.jwt_keys_file or self.data_dir / "jwt-keys.json"

    @property
    def uses_s3(self) -> bool:
        return bool(self.storage_url and self.storage_url.startswith("s3://"))

    @property
    def s3_bucket(self) -> str:
        return (self.storage_url or "").removeprefix("s3://").strip("/")

    def check_for_production(self) -> list[str]:
        """Problems that make this configuration unfit outside development."""
        problems = []
        if self.environment == "production":
            if self.jwt_secret is None:
                problems.append("set CROSSDOC_JWT_SECRET from your secret store")
            elif len(self.jwt_secret.get_secret_value()) < 32:
                problems.append("CROSSDOC_JWT_SECRET must be at least 32 characters")
            if self.demo:
                problems.append("set CROSSDOC_DEMO=false: no demo users in production")
        return problems
