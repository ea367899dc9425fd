"""Which error messages get the Korean sentence of their code in front."""

from __future__ import annotations

import pytest

from search_api.errors import KOREAN_MESSAGES, bilingual


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("저장 공간이 부족합니다 / Storage is full", True),  # already Korean, then English
        ("요청이 너무 많습니다 · too many requests", True),
        ("query.q: 1000자 이하여야 합니다 · query.q: String too long", True),
        ("비밀번호가 틀렸습니다", True),  # Korean alone
        ("document not found", False),
        ("department: no department 기록과", False),  # English quoting a Korean name
    ],
)
def test_korean_is_added_unless_the_message_has_its_own(message: str, kept: bool) -> None:
    result = bilingual("not_found", message)
    if kept:
        assert result == message
    else:
        assert result == f"{KOREAN_MESSAGES['not_found']} · {message}"


def test_an_unknown_code_still_gets_korean() -> None:
    assert bilingual("some_new_code", "it broke").endswith(" · it broke")
    assert bilingual("some_new_code", "it broke") != "it broke"
