"""Small factories for test data. A permission case is one argument (`readers`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from indexer.index.base import IndexDocument

T0 = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)


def index_doc(
    doc_id: str,
    body: str = "",
    *,
    readers: Iterable[str] = ("gov",),
    title: str = "문서",
    filename: str | None = None,
    revision: int = 1,
    department: str = "dept-a",
    ministry: str = "ministry-a",
    content_type: str = "application/pdf",
    tags: tuple[str, ...] = (),
    created_at: datetime = T0,
    folder: str = "",
    folder_path: tuple[str, ...] = (),
) -> IndexDocument:
    """An index document readable by `readers` (default: everyone in government)."""
    return IndexDocument(
        id=doc_id,
        revision=revision,
        title=title,
        filename=filename if filename is not None else f"{doc_id}.pdf",
        body=body,
        department=department,
        ministry=ministry,
        content_type=content_type,
        tags=tags,
        owner="user:owner",
        readers=frozenset(readers),
        created_at=created_at,
        updated_at=created_at,
        folder=folder,
        folder_path=folder_path,
    )
