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
        ("U자형", "U자형"),
        ("2026년 Vol. 2 정책 동향", "2026년 Vol. 2 정책 동향"),
        ("U.S. 통상 정책 분석", "U.S. 통상 정책 분석"),
        ("테스트베드 운영 계획", "테스트베드 운영 계획"),
        ("시작하는 공무원을 위한 안내", "시작하는 공무원을 위한 안내"),
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
        # issue 14: template fillers and test titles
        "본문내용본문내용",
        "본문 내용",
        "테스트",
        "Test 2",
        "Start",
        "시작",
        "바탕글",
        "제목을 입력하세요",
        "Microsoft Word - 2026년 업무계획.docx",
        "Microsoft Excel - 예산.xlsx",
        "abcabcabc",
    ],
)
def test_placeholders_give_way_to_the_file_name(placeholder: str) -> None:
    assert metadata_title(placeholder) == ""


def test_a_title_longer_than_a_title_is_body_text() -> None:
    long = "주민등록 사실조사 " * 14  # 140 characters, no sentence end, no repetition
    assert metadata_title(long + "결과") == ""


@pytest.mark.parametrize(
    "body",
    [
        "출생통보제가 7월부터 시행됩니다. 의료기관은 출생 사실을 통보합니다",
        "This report describes the budget. It was approved in May",
        "가나다라마바사 " * 20,
    ],
)
def test_body_text_recorded_as_a_title_gives_way_to_the_file_name(body: str) -> None:
    assert metadata_title(body) == ""
