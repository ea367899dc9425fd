"""`/search` and `/suggest` serialise their answers themselves
(`search_api.routers.search.search_endpoint`, `suggest_endpoint`): the bytes must
be those FastAPI's own path makes from the same model (dump, validate against
`response_model`, JSON)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from search_api.schemas import (
    FacetOut,
    FilterWarningOut,
    HitOut,
    SearchOut,
    SuggestionOut,
    SuggestOut,
)


def test_the_search_answer_is_the_json_fastapi_would_send() -> None:
    out = SearchOut.model_construct(
        total=3,
        page=1,
        size=20,
        hits=[
            HitOut.model_construct(
                id="d1",
                title='출생신고 안내 "따옴표" <b>',
                filename="보고서.hwp",
                department="MOIS-D1",
                ministry="MOIS",
                content_type="application/x-hwp",
                created_at=datetime(2026, 11, 30, 3, 4, 5, 123456, tzinfo=UTC),
                score=12.345678901234,
                highlights=["<mark>출생</mark>신고 …", "tab\tnew\nline"],
            ),
            HitOut.model_construct(
                id="d2",
                title="t",
                filename="f",
                department="",
                ministry="",
                content_type="",
                created_at=datetime(1970, 1, 1, tzinfo=UTC),
                score=0.0,
                highlights=[],
            ),
        ],
        facets={
            "department": [FacetOut.model_construct(value="MOIS-D1", count=2)],
            "tag": [],
        },
        did_you_mean="출생 신고",
        warnings=[FilterWarningOut(code="unknown_department", message="없음 · none")],
    )
    validated = SearchOut.model_validate(out.model_dump())
    fastapi_body = JSONResponse(jsonable_encoder(validated)).body
    assert out.model_dump_json().encode() == fastapi_body


def test_the_suggest_answer_is_the_json_fastapi_would_send() -> None:
    out = SuggestOut.model_construct(
        q="행정아",
        suggestions=[
            SuggestionOut.model_construct(text='행정안전부 "지침" <b>', kind="title", count=1),
            SuggestionOut.model_construct(text="행정안전부", kind="term", count=12345),
            SuggestionOut.model_construct(text="tab\tnew\nline", kind="term", count=0),
        ],
    )
    validated = SuggestOut.model_validate(out.model_dump())
    fastapi_body = JSONResponse(jsonable_encoder(validated)).body
    assert out.model_dump_json().encode() == fastapi_body
    empty = SuggestOut.model_construct(q="", suggestions=[])
    assert empty.model_dump_json().encode() == JSONResponse(jsonable_encoder(empty)).body
