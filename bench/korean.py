"""Generated Korean government-style text for benchmarks (deterministic with a seed)."""

from __future__ import annotations

import random

NOUNS = (  # noqa: SIM905 (a word list reads better as text)
    "예산 정책 보고서 계획 회의 안건 사업 추진 현황 개선 방안 검토 결과 지원 제도 운영 관리 "
    "점검 평가 협의 조정 시행 공고 입찰 계약 용역 민원 처리 행정 정보 시스템 데이터 보안 "
    "개인정보 보호 출생신고 주민등록 복지 급여 주택 공급 도로 교통 안전 재난 대응 훈련 "
    "교육 인력 채용 인사 조직 기록물 보존 이관 폐기 열람 공개 청구 감사 지적 사항 조치 "
    "디지털 정부 혁신 클라우드 전환 저장소 통합 검색 서비스 품질 만족도 조사 통계 분석 "
    "지방자치단체 협력 국제 교류 회의록 의결 위원회 자문 연구 과제 성과 지표 목표 달성"
).split()
PARTICLES = ("은", "는", "이", "가", "을", "를", "에", "에서", "의", "으로", "와", "과", "도", "")
ENDINGS = ("한다.", "하였다.", "합니다.", "했습니다.", "할 예정이다.", "을 검토 중이다.", "임.")


def sentence(rng: random.Random, words: int = 8) -> str:
    parts = [rng.choice(NOUNS) + rng.choice(PARTICLES) for _ in range(words - 1)]
    return " ".join(parts) + " " + rng.choice(NOUNS) + rng.choice(ENDINGS)


def document_text(rng: random.Random, target_bytes: int = 1024) -> str:
    out: list[str] = []
    size = 0
    while size < target_bytes:
        s = sentence(rng, rng.randint(5, 12))
        out.append(s)
        size += len(s.encode("utf-8")) + 1
    return "\n".join(out)


def title(rng: random.Random) -> str:
    return " ".join(rng.choice(NOUNS) for _ in range(rng.randint(2, 4)))


def query(rng: random.Random) -> str:
    """A civil servant's query: one to three words, sometimes with a particle."""
    words = [rng.choice(NOUNS) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    if rng.random() < 0.3:
        words[-1] += rng.choice(PARTICLES)
    return " ".join(words)
