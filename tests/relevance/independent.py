"""A relevance set judged without the analyser: real Korean text and generated notices.

The documents are (1) generated government notices about coined programme names
(사업명, 제도명: `청년마음건강바우처`, `어르신스마트경로당`…), the kind of compound no
user dictionary lists, written with dates (`2024년 3월 15일`, `2025년도`), articles
(`제3조`, `제12조의2`), English/Korean mixes (`AI바우처`), ministry abbreviations
and spacing variants; and (2) when `../shared/corpus` is present, the real Hangul
documents of `hangul/` (public notices of local governments, a procurement
request, a press release…), read with our HWP/HWPX readers.

Relevance is decided by rules on the text itself, never by the analyser, so a
smarter analyser cannot grade itself: a query's entry in `independent_queries.json`
lists `needles`, groups of alternatives; a document is relevant when, for every
group, one alternative occurs in its title or body (lowercased, NFC; with
`spacing`, whitespace is ignored on both sides, for spacing variants; a Latin
or digit edge of a needle must not run on into more letters or digits). A needle
is written by hand: the noun a query with a particle is about, the full name an
abbreviation stands for.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20261129
QUERIES_FILE = Path(__file__).with_name("independent_queries.json")
#: The shared real-document corpus (beside the checkout, in CI too).
CORPUS_DIR = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "hangul"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    body: str
    ministry: str
    created_at: datetime

    @property
    def text(self) -> str:
        return self.title + "\n" + self.body


@dataclass(frozen=True)
class IndependentQuery:
    id: str
    query: str
    kind: str
    #: Groups of alternatives: every group must have one alternative in the text.
    needles: tuple[tuple[str, ...], ...]
    #: Ignore whitespace when matching (spacing variants).
    spacing: bool = False
    #: Only judged when the real corpus is present.
    corpus: bool = False


def _norm(text: str, spacing: bool) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    return _SPACE.sub("", text) if spacing else text


def _occurs(needle: str, haystack: str) -> bool:
    """`needle` occurs in `haystack`, and where it starts or ends with a Latin letter
    or a digit, not as part of a longer Latin word or number (`ai` is not in `mail`,
    `3월` is not in `13월`); Hangul edges may touch anything (inside compounds)."""
    pattern = re.escape(needle)
    if needle[:1].isascii() and needle[:1].isalpha():
        pattern = "(?<![a-z])" + pattern
    elif needle[:1].isdigit():
        pattern = "(?<![0-9])" + pattern
    if needle[-1:].isascii() and needle[-1:].isalpha():
        pattern += "(?![a-z])"
    elif needle[-1:].isdigit():
        pattern += "(?![0-9])"
    return re.search(pattern, haystack) is not None


def is_relevant(text: str, query: IndependentQuery) -> bool:
    """The rule: every needle group has an alternative occurring in `text`."""
    haystack = _norm(text, query.spacing)
    return all(
        any(_occurs(_norm(alt, query.spacing), haystack) for alt in group)
        for group in query.needles
    )


def load_queries(*, with_corpus: bool) -> list[IndependentQuery]:
    raw = json.loads(QUERIES_FILE.read_text(encoding="utf-8"))
    out = []
    for q in raw["queries"]:
        query = IndependentQuery(
            id=q["id"],
            query=q["query"],
            kind=q["kind"],
            needles=tuple(tuple(group) for group in q["needles"]),
            spacing=bool(q.get("spacing", False)),
            corpus=bool(q.get("corpus", False)),
        )
        if with_corpus or not query.corpus:
            out.append(query)
    return out


# -- generated notices -----------------------------------------------------------------

#: Ministries: full name first, then the abbreviations notices use.
MINISTRIES: dict[str, tuple[str, ...]] = {
    "MOIS": ("행정안전부", "행안부"),
    "MOHW": ("보건복지부", "복지부"),
    "MOLIT": ("국토교통부", "국토부"),
    "MSIT": ("과학기술정보통신부", "과기정통부"),
    "MOEF": ("기획재정부", "기재부"),
    "MOEL": ("고용노동부", "고용부"),
    "MOGEF": ("여성가족부", "여가부"),
    "MSS": ("중소벤처기업부", "중기부"),
    "MAFRA": ("농림축산식품부", "농식품부"),
    "MCST": ("문화체육관광부", "문체부"),
    "ME": ("환경부",),
    "MOE": ("교육부",),
}

#: Coined programme names (none is in the user dictionary), by issuing ministry.
#: Some are written spaced in some notices (see SPACED).
PROGRAMMES: dict[str, tuple[str, ...]] = {
    "MOIS": (
        "문서저장소고도화사업",
        "안심귀가스카우트",
        "마을공동체활성화지원",
        "행정정보공동이용센터",
        "재난안전통신망",
        "고향사랑기부제",
        "지역사랑상품권",
        "국민비서알림서비스",
        "노후청사복합개발",
        "정부24민원서비스",
    ),
    "MOHW": (
        "청년마음건강바우처",
        "어르신스마트경로당",
        "긴급복지지원제도",
        "온종일돌봄체계",
        "희망저축계좌",
        "1인가구안심동행",
        "주거급여수급자관리",
    ),
    "MSIT": (
        "디지털배움터",
        "AI바우처지원사업",
        "공공데이터개방플랫폼",
        "5G통신망구축",
        "ICT인프라고도화",
    ),
    "MOLIT": ("복합환승센터조성", "생활밀착형숲조성", "공공임대주택공급", "스마트도시통합플랫폼"),
    "MOEL": ("국민내일배움카드", "K디지털트레이닝", "청년일자리도약장려금"),
    "ME": ("탄소중립실천포인트제", "배출권거래제", "자원순환보증금제"),
    "MOE": ("초등늘봄학교", "디지털교과서도입", "고교학점제"),
    "MSS": ("소상공인스마트상점", "중소기업R&D바우처"),
    "MAFRA": ("농촌왕진버스", "공익직불제"),
    "MCST": ("통합문화이용권", "배리어프리키오스크"),
    "MOGEF": ("아이돌봄서비스", "청소년안전망"),
    "MOEF": ("예비타당성조사", "재정사업자율평가"),
}
#: Programme name -> how notices sometimes space it.
SPACED: dict[str, str] = {
    "디지털배움터": "디지털 배움터",
    "청년마음건강바우처": "청년 마음건강 바우처",
    "어르신스마트경로당": "어르신 스마트 경로당",
    "재난안전통신망": "재난안전 통신망",
    "희망저축계좌": "희망 저축계좌",
    "공공데이터개방플랫폼": "공공데이터 개방 플랫폼",
    "국민내일배움카드": "국민내일 배움카드",
    "탄소중립실천포인트제": "탄소중립 실천포인트제",
}

_SENTENCES = (
    "{m}{는} {d} {p} 추진계획을 발표하였다.",
    "{p}{은} 「{law}」 {art}에 근거하여 {y}년부터 시행된다.",
    "{m}{는} {p} 대상자를 {y}년도 {mo}월까지 모집한다.",
    "{p} 예산은 {y}년도 본예산 기준 {won}억원이며 전년 대비 증액되었다.",
    "자세한 내용은 {p} 누리집 또는 정부24에서 확인할 수 있다.",
    "시군구는 {p} 운영 실적을 {d}까지 {m}에 제출하여야 한다.",
)
_FILLERS = (
    "각 기관은 개인정보 보호에 각별히 유의하여야 한다.",
    "지방자치단체와 협력하여 현장 의견을 수렴할 예정이다.",
    "관련 지침은 내부 전자문서시스템 게시판에 게시한다.",
    "담당 공무원 교육은 온라인으로 실시한다.",
    "문의사항은 소관 부서 담당자에게 연락하기 바란다.",
    "성과평가 결과는 다음 연도 예산 편성에 반영한다.",
    "민원 처리 기간은 접수일로부터 14일 이내로 한다.",
    "관계부처 합동 점검반을 구성하여 운영 실태를 점검한다.",
    "국민 참여를 높이기 위해 홍보 영상을 제작하여 배포한다.",
    "정책 효과를 분석하기 위한 연구용역을 발주한다.",
)
_LAWS = (
    "전자정부법",
    "사회보장급여법",
    "국가재정법",
    "지방자치법",
    "공공기관의 정보공개에 관한 법률",
)
_ARTICLES = ("제3조", "제12조의2", "제7조 제1항", "제25조", "제3조의3")
_TITLES = ("{p} 추진계획 안내", "{y}년 {p} 시행 공고", "{m} {p} 설명자료", "{p} 운영지침 개정")


def _has_final(word: str) -> bool:
    last = word[-1]
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28 != 0
    return last in "0123456789lmnr"


def _fill(template: str, **values: str) -> str:
    out = template.format(**values, 는="{는}", 은="{은}")
    for slot, (with_final, without) in {"{는}": ("은", "는"), "{은}": ("은", "는")}.items():
        while slot in out:
            before = out[: out.index(slot)]
            out = out.replace(slot, with_final if _has_final(before) else without, 1)
    return out


def generate(seed: int = SEED) -> list[Document]:
    """About 300 notices, deterministic: 10 per programme, and a filler notice for every 5."""
    rng = random.Random(seed)
    drafts: list[tuple[str, str | None]] = []
    for code, names in PROGRAMMES.items():
        for name in names:
            drafts.extend((code, name) for _ in range(5))
    drafts.extend((code, None) for code in MINISTRIES for _ in range(4))
    rng.shuffle(drafts)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    docs = []
    for number, (code, programme) in enumerate(drafts, start=1):
        ministry = rng.choice(MINISTRIES[code])
        year = rng.choice(("2023", "2024", "2025"))
        day = start + timedelta(days=rng.randrange(700))
        values = {
            "m": ministry,
            "y": year,
            "mo": str(rng.randint(1, 12)),
            "d": f"{day.year}년 {day.month}월 {day.day}일",
            "law": rng.choice(_LAWS),
            "art": rng.choice(_ARTICLES),
            "won": str(rng.randint(3, 900)),
        }
        fillers = rng.sample(_FILLERS, rng.randint(2, 4))
        if programme is None:
            title = f"{ministry} 업무 안내"
            sentences = [_fill("{m}{는} 다음과 같이 알린다.", **values), *fillers]
        else:
            written = SPACED.get(programme) if rng.random() < 0.3 else None
            values["p"] = written or programme
            own = rng.sample(_SENTENCES, 3)
            title = _fill(rng.choice(_TITLES), **values)
            sentences = [_fill(s, **values) for s in own[:1]] + fillers[:1]
            sentences += [_fill(s, **values) for s in own[1:]] + fillers[1:]
        docs.append(
            Document(
                id=f"gen-{number:04d}",
                title=title,
                body=" ".join(sentences),
                ministry=code,
                created_at=day,
            )
        )
    return docs


# -- the real corpus -----------------------------------------------------------------------


def corpus_documents(directory: Path = CORPUS_DIR) -> list[Document]:
    """The real Hangul documents with Korean text ([] when the corpus is absent)."""
    from indexer.extraction.hangul.hwp5 import is_hwp5, read_hwp5
    from indexer.extraction.hangul.hwpx import is_hwpx, read_hwpx
    from indexer.extraction.hangul.result import HangulError

    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.iterdir()):
        try:
            if is_hwp5(path):
                text = read_hwp5(path, max_chars=1_000_000).text
            elif is_hwpx(path):
                text = read_hwpx(path, max_chars=1_000_000).text
            else:
                continue
        except (HangulError, OSError, ValueError):
            continue  # the corpus holds broken files on purpose
        if sum("가" <= c <= "힣" for c in text) < 20:
            continue
        out.append(
            Document(
                id=f"hangul/{path.name}",
                title=path.stem,
                body=text,
                ministry="",
                created_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
        )
    return out
