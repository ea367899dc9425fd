"""`/search` serialises its answer itself (`search_api.routers.search.search_endpoint`):
the bytes must be those FastAPI's own path makes from the same model (dump,
validate against `response_model`, JSON)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from search_api.schemas import FacetOut, FilterWarningOut, HitOut, SearchOut


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
