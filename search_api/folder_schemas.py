"""Request and response bodies of the /folders endpoints (beside `schemas.py`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from search_api.schemas import CODE_PATTERN, DocumentOut, Strict

FOLDER_ID_PATTERN = r"^[0-9a-f]{32}$"


class FolderOut(BaseModel):
    id: str
    department: str
    parent: str | None = Field(description="the parent folder's id (null: the top level)")
    name: str
    path: str = Field(description="names from the department's top level", examples=["/민원/2026"])
    created_at: datetime
    created_by: str
    updated_at: datetime


class FolderTreeOut(BaseModel):
    department: str
    parent: str | None = Field(description="the folder listed (null: the whole tree)")
    folders: list[FolderOut] = Field(description="parents before children, siblings by name")


class FolderCreate(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["2026 민원"])
    department: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        description="the department (default: the caller's own)",
    )
    parent: str | None = Field(
        default=None, pattern=FOLDER_ID_PATTERN, description="the parent folder (null: top level)"
    )


class FolderPatch(Strict):
    """Rename (`name`) and/or move (`parent`: a folder of the same department, or
    null for the top level)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent: str | None = Field(default=None, pattern=FOLDER_ID_PATTERN)


class DocumentFolderPatch(Strict):
    folder: str | None = Field(
        pattern=FOLDER_ID_PATTERN,
        description="the folder to file the document in (null: the department's top level)",
    )


class FolderDocumentsOut(BaseModel):
    folder: FolderOut
    total: int = Field(description="documents here the caller may read (others count nowhere)")
    page: int
    size: int
    documents: list[DocumentOut]
