"""Search filters as people write them: `content_type=pdf`, a department by its code in
any case or by its name; and a warning, not a silent 0 hits, for a value that names
nothing.

The index holds media types (`application/pdf`) and organisation codes (`MOIS-REC`).
A filter value is resolved to what the index holds; a value that resolves to nothing
is kept as given (so it still matches nothing, as before) and reported in a
`FilterWarning`, Korean and English, which the search answer carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from storage.catalog.records import DepartmentRecord, MinistryRecord

#: Short names (file extensions) for the media types the index holds, as the extractor
#: records them (Tika's detection, our HWP reader's types).
CONTENT_TYPE_ALIASES: dict[str, str] = {
    "pdf": "application/pdf",
    "hwp": "application/x-hwp",
    "hwpx": "application/hwp+zip",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "rtf": "application/rtf",
    "txt": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
    "htm": "text/html",
    "xml": "application/xml",
    "json": "application/json",
    "eml": "message/rfc822",
    "msg": "application/vnd.ms-outlook",
    "zip": "application/zip",
    "7z": "application/x-7z-compressed",
    "gz": "application/gzip",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
}


WarningCode = Literal[
    "unknown_department", "unknown_ministry", "unknown_content_type", "unknown_folder"
]


@dataclass(frozen=True)
class FilterWarning:
    """A filter value that names nothing: which filter, and what to do instead."""

    code: WarningCode
    message: str


@dataclass(frozen=True)
class ResolvedFilters:
    """The filters as the index holds them, and what could not be resolved."""

    department: str | None
    ministry: str | None
    content_type: str | None
    warnings: tuple[FilterWarning, ...]


class Directory(Protocol):
    """The organisation reads filter resolution needs (the catalog's `Organisation`)."""

    def get_department(self, code: str) -> DepartmentRecord | None:
        """The department with exactly this code, or None."""
        ...

    def list_departments(self) -> list[DepartmentRecord]:
        """Every department."""
        ...

    def get_ministry(self, code: str) -> MinistryRecord | None:
        """The ministry with exactly this code, or None."""
        ...

    def list_ministries(self) -> list[MinistryRecord]:
        """Every ministry."""
        ...


def resolve_content_type(value: str) -> tuple[str, FilterWarning | None]:
    """A media type for `value`: a media type itself (parameters dropped, lower case,
    as the index holds it), or a short name (`pdf`, `.hwp`, `DOCX`)."""
    given = value.strip()
    if "/" in given:
        return given.split(";", 1)[0].strip().lower(), None
    alias = given.lower().lstrip(".")
    if alias in CONTENT_TYPE_ALIASES:
        return CONTENT_TYPE_ALIASES[alias], None
    names = ", ".join(sorted({"pdf", "hwp", "hwpx", "docx", "xlsx", "pptx", "txt"}))
    return given, FilterWarning(
        "unknown_content_type",
        f"content_type '{given}': 알 수 없는 파일 형식입니다 ({names} 또는 "
        f"application/pdf 같은 미디어 유형) · unknown file type: use a short name "
        f"({names}, …) or a media type such as application/pdf",
    )


def _resolve_code(
    value: str,
    exact: DepartmentRecord | MinistryRecord | None,
    every: Sequence[DepartmentRecord | MinistryRecord],
) -> str | None:
    """The code `value` names: exactly, in another case, or by the exact name."""
    if exact is not None:
        return exact.code
    folded = value.casefold()
    by_code = [r.code for r in every if r.code.casefold() == folded]
    if len(by_code) == 1:
        return by_code[0]
    by_name = [r.code for r in every if r.name == value]
    return by_name[0] if len(by_name) == 1 else None


def resolve_filters(
    directory: Directory,
    *,
    department: str | None,
    ministry: str | None,
    content_type: str | None,
) -> ResolvedFilters:
    """Each filter as the index holds it; unknown values kept as given, with a warning.

    Codes and names of departments and ministries are directory facts every signed-in
    user may look up (they name no document), so saying one does not exist leaks
    nothing.
    """
    warnings: list[FilterWarning] = []
    if department:
        code = _resolve_code(
            department, directory.get_department(department), directory.list_departments()
        )
        if code is None:
            warnings.append(
                FilterWarning(
                    "unknown_department",
                    f"department '{department}': 그런 부서 코드나 이름이 없습니다 · "
                    "no department has this code or name",
                )
            )
        department = code or department
    if ministry:
        code = _resolve_code(
            ministry, directory.get_ministry(ministry), directory.list_ministries()
        )
        if code is None:
            warnings.append(
                FilterWarning(
                    "unknown_ministry",
                    f"ministry '{ministry}': 그런 부처 코드나 이름이 없습니다 · "
                    "no ministry has this code or name",
                )
            )
        ministry = code or ministry
    if content_type:
        content_type, warning = resolve_content_type(content_type)
        if warning is not None:
            warnings.append(warning)
    return ResolvedFilters(
        department=department or None,
        ministry=ministry or None,
        content_type=content_type or None,
        warnings=tuple(warnings),
    )
