"""Titles recorded inside files: real ones replace the file name, placeholders do not."""

from __future__ import annotations

import pytest

from indexer.titles import metadata_title


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ("LED TV 가격 착해진다", "LED TV 가격 착해진다"),
        ("업무제안서", "업무제안서"),
        ("  출생통보제\n 시행 안내 ", "출생통보제 시행 안내"),
        ("Microsoft Word - 2026년 업무계획.docx", "2026년 업무계획"),
        ("U자형", "U자형"),
    ],
)
def test_real_titles_are_kept_normalised(recorded: str, expected: str) -> None:
    assert metadata_title(recorded) == expected


@pytest.mark.parametrize(
    "placeholder",
    [
        "",
        "1111",
        "3",
        " - ",
        "양쪽 정렬",
        "개요1",
        "글머리 2",
        "필드1",
        "제목",
        "제목 없음",
        "PowerPoint Presentation",
        "Slide 1",
        "title",
        "Untitled",
        "Microsoft",
        "문서1",
    ],
)
def test_placeholders_give_way_to_the_file_name(placeholder: str) -> None:
    assert metadata_title(placeholder) == ""


def test_long_titles_are_cut_to_what_the_catalog_stores() -> None:
    assert len(metadata_title("가" * 2000)) == 500
