"""The extraction cache: extracted text by blob digest and extractor version (SQL)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from storage.catalog import models as m
from storage.catalog.records import ExtractionRecord
from storage.catalog.sql.base import SqlRepository
from storage.catalog.sql.database import now as _now
from storage.catalog.sql.database import table as _table


class SqlExtractions(SqlRepository):
    """`ports.Extractions` over SQL."""

    def get(self, sha256s: Sequence[str], extractor_version: str) -> dict[str, ExtractionRecord]:
        """Cached extractions of these blobs by this extractor version, by SHA-256."""
        if not sha256s:
            return {}
        table = m.ExtractedText.__table__
        with self._session() as s:
            rows = s.execute(
                select(table).where(
                    table.c.sha256.in_(list(set(sha256s))),
                    table.c.extractor_version == extractor_version,
                )
            )
            return {
                r.sha256: ExtractionRecord(
                    r.sha256,
                    r.extractor_version,
                    r.status,
                    r.detail,
                    r.content_type,
                    dict(r.doc_metadata),
                    zlib.decompress(r.text_zlib).decode("utf-8"),
                    r.truncated,
                )
                for r in rows
            }

    def put(self, records: Sequence[ExtractionRecord]) -> None:
        """Cache extraction results (one transaction for the batch; replaces older rows)."""
        latest = {(r.sha256, r.extractor_version): r for r in records}
        if not latest:
            return
        table = _table(m.ExtractedText)
        now = _now()
        # Compressed before the write transaction: the catalog's writers (uploads)
        # need not wait while megabytes of text are compressed.
        rows = [
            {
                "sha256": rec.sha256,
                "extractor_version": rec.extractor_version,
                "status": rec.status,
                "detail": rec.detail,
                "content_type": rec.content_type,
                "doc_metadata": rec.metadata,
                "text_zlib": zlib.compress(rec.text.encode("utf-8"), 6),
                "truncated": rec.truncated,
                "created_at": now,
            }
            for rec in latest.values()
        ]
        with self._session(write=True) as s:
            for version in {version for _, version in latest}:
                s.execute(
                    delete(table).where(
                        table.c.extractor_version == version,
                        table.c.sha256.in_([sha for sha, v in latest if v == version]),
                    )
                )
            s.execute(insert(table), rows)
