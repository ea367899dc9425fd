"""Generated Korean government notices for the relevance test set (deterministic).

Each document is a notice by one ministry. Some are about one *subject* (birth
registration, 국민디자인단, the document repository…) and mention it in one of
several surface forms (spacing, particles, compounds, English); the rest are
filler notices (budgets, personnel, events) written to contain near misses
(`산업부문`, `고용부담금`, `국민 참여 디자인 공모단`, `출생 연도별 … 신고`).
Ministries are named in the text by their full name, abbreviation or former
name, chosen per document. What a document is about is known by construction:
that is what the judgments (`queries.json`) are made from.

`python -m tests.relevance.corpus` rewrites the judgments' document ids from the
queries' `about` rules; a test checks the stored ids still match the generator.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20261124
QUERIES_FILE = Path(__file__).with_name("queries.json")

#: code -> the names a notice may use for the ministry (full, abbreviation, former).
MINISTRIES: dict[str, tuple[str, ...]] = {
    "MOIS": ("행정안전부", "행안부", "행정자치부"),
    "MOHW": ("보건복지부", "복지부"),
    "MOLIT": ("국토교통부", "국토부"),
    "MSIT": ("과학기술정보통신부", "과기정통부"),
    "MOEF": ("기획재정부", "기재부"),
    "MOTIE": ("산업통상자원부", "산업부"),
    "MCST": ("문화체육관광부", "문체부"),
    "MOE": ("교육부",),
    "MOFA": ("외교부",),
    "MOEL": ("고용노동부", "고용부"),
    "ME": ("환경부",),
    "MOGEF": ("여성가족부", "여가부"),
    "MSS": ("중소벤처기업부", "중기부"),
    "MOF": ("해양수산부", "해수부"),
    "MAFRA": ("농림축산식품부", "농식품부"),
    "MOJ": ("법무부",),
    "MND": ("국방부",),
    "MOU": ("통일부",),
    "MPVA": ("국가보훈부", "국가보훈처"),
}


@dataclass(frozen=True)
class Subject:
    #: Surface forms of the subject; each document uses one (cycled, so all occur).
    forms: tuple[str, ...]
    #: Sentences with {k} (the form) and {m} (the ministry's name).
    sentences: tuple[str, ...]
    titles: tuple[str, ...]
    #: ministry code -> how many documents on this subject it issues.
    issuers: dict[str, int]


SUBJECTS: dict[str, Subject] = {
    "birth": Subject(
        forms=("출생 신고", "출생신고", "출생신고체계", "출생신고서 접수"),
        sentences=(
            "{m}{는} {k}{를} 온라인으로 처리하는 방안을 추진한다.",
            "병원에서 태어난 아동의 {k} 누락을 막기 위해 절차를 개선한다.",
            "읍면동 주민센터의 {k} 업무 처리 지침을 배포한다.",
        ),
        titles=("{k} 제도 개선 안내", "{m} {k} 처리 지침"),
        issuers={"MOIS": 4, "MOJ": 3, "MOHW": 3},
    ),
    "birth_notice": Subject(
        forms=("출생통보제",),
        sentences=(
            "{m}{는} 의료기관이 출생 사실을 통보하는 {k}{를} 시행한다.",
            "{k} 시행에 따라 보호출산제와 함께 위기 임산부 지원을 강화한다.",
        ),
        titles=("{k} 시행 안내", "{m} {k} 설명자료"),
        issuers={"MOHW": 4, "MOJ": 4},
    ),
    "design": Subject(
        forms=("국민디자인단",),
        sentences=(
            "{m}{는} 정책 수요자가 참여하는 {k}{를} 운영한다.",
            "{k} 과제로 민원 서비스 개선안을 도출하였다.",
        ),
        titles=("{k} 운영 결과", "{m} {k} 모집 공고"),
        issuers={"MOIS": 4, "MCST": 2, "MOGEF": 2},
    ),
    "repo": Subject(
        forms=("저장소", "문서 저장소", "공유 저장소"),
        sentences=(
            "부서 문서는 {k}에서 관리하며 권한이 있는 직원만 열람한다.",
            "{m}{는} {k}의 용량을 증설하고 백업 주기를 단축한다.",
            "기존 파일 서버의 자료를 {k}{로} 이관한다.",
        ),
        titles=("{k} 이용 안내", "{m} {k} 이관 계획"),
        issuers={"MOIS": 3, "MSIT": 3, "MOEF": 2},
    ),
    "gov30": Subject(
        forms=("정부3.0",),
        sentences=(
            "{m}{는} 개방·공유·소통·협력의 {k} 가치를 실현한다.",
            "{k} 추진 과제로 공공데이터 개방을 확대한다.",
        ),
        titles=("{k} 추진 계획", "{m} {k} 우수 사례"),
        issuers={"MOIS": 4, "MSS": 2, "MPVA": 2},
    ),
    "library": Subject(
        forms=("국립중앙도서관", "국립중앙도서관 및 지역 공공도서관"),
        sentences=(
            "{m}{는} {k}{과} 협력하여 독서 문화 사업을 추진한다.",
            "정책 자료를 {k}에 납본하고 디지털 자료로 공개한다.",
        ),
        titles=("{k} 협력 사업", "{m} 도서관 정책 안내"),
        issuers={"MCST": 4, "MOE": 2},
    ),
    "privacy": Subject(
        forms=("개인정보 보호", "개인정보보호", "개인 정보 보호", "personal data 보호"),
        sentences=(
            "{m}{는} 공공기관 {k} 실태를 점검한다.",
            "민원 시스템의 {k} 조치를 강화하고 접속 기록을 보관한다.",
        ),
        titles=("{k} 점검 결과", "{m} {k} 지침"),
        issuers={"MOIS": 3, "MAFRA": 3, "MSIT": 3},
    ),
    "ai": Subject(
        forms=("AI 챗봇", "인공지능 챗봇", "AI챗봇", "인공지능(AI) chatbot"),
        sentences=(
            "{m}{는} 민원 상담에 {k}{을} 도입한다.",
            "{k} 시범 서비스의 응답 정확도를 평가하였다.",
        ),
        titles=("{k} 도입 계획", "{m} {k} 시범 운영"),
        issuers={"MSIT": 4, "MOIS": 3, "MOEL": 2},
    ),
    "cloud": Subject(
        forms=("클라우드 전환", "cloud 전환", "클라우드 네이티브 전환"),
        sentences=(
            "{m}{는} 정보시스템의 {k}{을} 단계적으로 추진한다.",
            "{k} 사업의 보안 인증 절차를 안내한다.",
        ),
        titles=("{k} 추진 계획", "{m} {k} 사업 공고"),
        issuers={"MSIT": 4, "MOIS": 2, "MND": 2},
    ),
    "disaster": Subject(
        forms=("재난안전통신망", "재난 안전 통신망", "재난안전 통신망"),
        sentences=(
            "{m}{는} {k}{을} 이용한 합동 훈련을 실시한다.",
            "기관별 {k} 단말기 보급 현황을 점검한다.",
        ),
        titles=("{k} 합동 훈련", "{m} {k} 운영 지침"),
        issuers={"MOIS": 3, "MOF": 2, "MND": 2},
    ),
    "housing": Subject(
        forms=("공공임대주택", "공공 임대 주택", "공공임대 주택"),
        sentences=(
            "{m}{는} 신혼부부와 청년을 위한 {k} 공급을 확대한다.",
            "{k} 입주자 모집 기준을 개정한다.",
        ),
        titles=("{k} 공급 계획", "{m} {k} 입주자 모집"),
        issuers={"MOLIT": 5, "MOHW": 2},
    ),
    "jobs": Subject(
        forms=("청년일자리", "청년 일자리"),
        sentences=(
            "{m}{는} {k} 창출을 위한 예산을 편성한다.",
            "중소기업의 {k} 지원 사업 참여 기업을 모집한다.",
        ),
        titles=("{k} 지원 사업", "{m} {k} 대책"),
        issuers={"MOEL": 4, "MOEF": 3, "MOGEF": 2},
    ),
    "export": Subject(
        forms=("수출 지원", "수출지원"),
        sentences=(
            "{m}{는} 중견기업의 {k} 프로그램을 확대한다.",
            "해외 시장 {k} 협의회를 개최한다.",
        ),
        titles=("{k} 계획", "{m} {k} 사업 공고"),
        issuers={"MOTIE": 4, "MOFA": 2},
    ),
}

#: Filler sentences: everyday administration, with near misses for some queries.
FILLER = (
    "{m}{는} 2025년도 예산 집행 실적을 점검한다.",
    "직원 인사 발령 사항을 다음과 같이 알린다.",
    "청사 시설 안전 점검 결과를 공유한다.",
    "정기 회의 장소는 본관 대회의실이며 일정은 추후 안내한다.",
    "제조 산업부문 투자 동향을 분석하였다.",
    "장애인 고용부담금 납부 기한을 안내한다.",
    "국민 참여 디자인 공모단을 모집하고 우수작을 시상한다.",
    "출생 연도별 인구 통계를 공개하고 부가가치세 신고 기간을 안내한다.",
    "행정 업무 매뉴얼을 개정하고 안전 교육을 실시한다.",
    "{m} 소관 위원회의 회의록을 공개한다.",
    "민원 처리 기간 준수율을 분기별로 보고한다.",
    "기록물 정리와 보존 기간 재분류를 추진한다.",
    "지방자치단체와의 협력 사업 성과를 평가한다.",
    "연구 용역 입찰 공고를 게시한다.",
    "청렴 교육 이수 현황을 점검한다.",
    "국정감사 지적 사항에 대한 조치 결과를 보고한다.",
    "홍보 영상 제작 계획을 수립한다.",
    "보도자료 배포 일정을 조정한다.",
)
FILLER_TITLES = (
    "업무 보고",
    "{m} 주간 업무 계획",
    "회의 결과 보고",
    "{m} 공지 사항",
    "예산 집행 현황",
)
#: Filler notices per ministry (few for MOGEF and MPVA so that their queries stay judgeable).
FILLER_PER_MINISTRY = {code: 12 for code in MINISTRIES} | {"MOGEF": 2, "MPVA": 2}


@dataclass(frozen=True)
class GeneratedDocument:
    id: str
    title: str
    body: str
    ministry: str  # code
    subject: str | None  # None for filler
    form: str | None  # the subject's surface form used
    ministry_name: str  # the name used in the text
    created_at: datetime


def generate(seed: int = SEED) -> list[GeneratedDocument]:
    """The corpus: subject notices and filler notices, shuffled, with stable ids."""
    rng = random.Random(seed)
    drafts: list[tuple[str, str | None, str | None]] = []
    for key, subject in SUBJECTS.items():
        n = 0
        for code, count in subject.issuers.items():
            for _ in range(count):
                drafts.append((code, key, subject.forms[n % len(subject.forms)]))
                n += 1
    for code, count in FILLER_PER_MINISTRY.items():
        drafts.extend((code, None, None) for _ in range(count))
    rng.shuffle(drafts)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for number, (code, key, form) in enumerate(drafts, start=1):
        name = rng.choice(MINISTRIES[code])
        fillers = rng.sample(FILLER, rng.randint(3, 6))
        if key is None:
            title = rng.choice(FILLER_TITLES)
            sentences = [f"{name}{_topic(name)} 다음과 같이 알린다.", *fillers]
        else:
            subject = SUBJECTS[key]
            title = rng.choice(subject.titles)
            own = list(subject.sentences)
            rng.shuffle(own)
            sentences = [own[0], *fillers[:2], *own[1:], *fillers[2:]]
            if "{m}" not in "".join(sentences) + title:
                sentences.insert(0, f"{name}{_topic(name)} 다음과 같이 알린다.")
        body = " ".join(_fill(s, name, form or "") for s in sentences)
        out.append(
            GeneratedDocument(
                id=f"doc-{number:04d}",
                title=_fill(title, name, form or ""),
                body=body,
                ministry=code,
                subject=key,
                form=form,
                ministry_name=name,
                created_at=start + timedelta(days=number),
            )
        )
    return out


def _fill(template: str, ministry: str, form: str) -> str:
    text = template.replace("{m}{는}", ministry + _topic(ministry)).replace("{m}", ministry)
    for marker, (with_final, without) in _PARTICLES.items():
        text = text.replace("{k}" + marker, form + (with_final if _final(form) else without))
    return text.replace("{k}", form)


#: Particle markers in templates -> (after a final consonant, after a vowel).
_PARTICLES = {
    "{를}": ("을", "를"),
    "{을}": ("을", "를"),
    "{과}": ("과", "와"),
    "{로}": ("으로", "로"),
}


def _topic(word: str) -> str:
    return "은" if _final(word) else "는"


def _final(word: str) -> bool:
    """Whether the word ends in a consonant (받침), which picks the particle's form."""
    last = word.rstrip(")")[-1:]
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28 != 0
    return bool(last) and (last in "013678" or last.lower() in "lmnr")


# -- judgments ------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgedQuery:
    id: str
    query: str
    kind: str
    #: What a relevant document is about: a subject, a ministry, or both.
    about: dict[str, str]
    relevant: tuple[str, ...]


def is_relevant(doc: GeneratedDocument, about: dict[str, str]) -> bool:
    subject = about.get("subject")
    ministry = about.get("ministry")
    return (subject is None or doc.subject == subject) and (
        ministry is None or doc.ministry == ministry
    )


def load_queries(path: Path = QUERIES_FILE) -> list[JudgedQuery]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        JudgedQuery(q["id"], q["query"], q["kind"], dict(q["about"]), tuple(q["relevant"]))
        for q in raw["queries"]
    ]


def write_judgments(path: Path = QUERIES_FILE) -> None:
    """Rewrite each query's `relevant` ids from its `about` rule over the generated corpus."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    docs = generate()
    for q in raw["queries"]:
        q["relevant"] = [d.id for d in docs if is_relevant(d, q["about"])]
    path.write_text(json.dumps(raw, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_judgments()
    print(f"judgments written to {QUERIES_FILE}")
