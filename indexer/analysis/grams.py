"""Hangul bigrams: the fallback that finds a noun inside a compound mecab reads otherwise.

Korean public documents coin compounds all the time (service, policy and
programme names); mecab cuts an unknown compound into pieces by its costs, and a
noun the user searches for need not be one of them (`저장소` in a coined name may
come out as `…저/장소…` or glued to a neighbour). Morphological analysis stays the
primary, precise match; beside it every run of Hangul syllables is also indexed
as overlapping two-syllable grams (`출생신고체계` → 출생 생신 신고 고체 체계), at
consecutive positions, and a query word's Hangul is searched as a phrase of its
grams, which matches wherever the word occurs as written, inside any compound.

This is what Elasticsearch's `cjk_bigram` filter does, so
`infra/elasticsearch/index-settings.json` gives the scale-out engine the same
field (it also keeps short runs, which no query here needs: see `gram_runs`).
Pure string work: no analyser, no dictionary, so the grams never depend on
mecab's reading.
"""

from __future__ import annotations

import re
import unicodedata

#: Runs of precomposed Hangul syllables (가-힣), the only script bigrammed.
_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3]+")
#: Positions left between two runs, so a phrase of grams never spans a space.
RUN_GAP = 1
#: A run longer than this is not a word (a blob of syllables): it is cut.
MAX_RUN_CHARS = 200

#: (gram, position, start, end), as `indexer.analysis.process.TokenTuple`.
GramToken = tuple[str, int, int, int]


def hangul_grams(text: str) -> list[GramToken]:
    """The grams of every Hangul run of `text` (see `gram_runs`), offsets into `text`."""
    out: list[GramToken] = []
    for start, position, run in gram_runs(text):
        out.extend(
            (gram, position + i, start + i, start + i + 2) for i, gram in enumerate(run_grams(run))
        )
    return out


def gram_runs(text: str) -> list[tuple[int, int, str]]:
    """(offset, first position, run) of each Hangul run of `text` worth bigramming.

    Runs of one or two syllables are left out: a query run is two syllables or
    more, and one that equals a whole short word is found by the morphological
    match of that same word (it is analysed alike in both). Their positions stay
    counted (a run of n syllables takes n - 1 positions, then RUN_GAP more), so a
    phrase of grams never spans two runs.
    """
    out: list[tuple[int, int, str]] = []
    position = 0
    for match in _HANGUL_RUN.finditer(text):
        run = match.group()
        if len(run) > 2:
            run = run[:MAX_RUN_CHARS]
            out.append((match.start(), position, run))
        position += max(len(run) - 1, 1) + RUN_GAP
    return out


#: Particles a query word may end with that mecab, reading an unknown noun, can
#: take for the noun's last syllable (`경로당의` → 경로/당의): cut from the end of
#: the last run, longest first, when two syllables or more remain.
_PARTICLES = tuple(
    sorted(
        [
            "의",
            "은",
            "는",
            "을",
            "를",
            "에",
            "와",
            "과",
            "이",
            "가",
            "도",
            "로",
            "으로",
            "에서",
            "에게",
            "까지",
            "부터",
            "보다",
            "만",
            "이나",
            "과의",
            "와의",
        ],
        key=len,
        reverse=True,
    )
)


PARTICLES = frozenset(_PARTICLES)
_LONG_PARTICLES = frozenset(p for p in _PARTICLES if len(p) == 2)
_SHORT_PARTICLES = frozenset(p for p in _PARTICLES if len(p) == 1)


def strip_particle(word: str) -> str:
    """`word` without one trailing particle (`상품권을` → 상품권), if one is there
    and something is left."""
    if len(word) > 2 and word[-2:] in _LONG_PARTICLES:
        return word[:-2]
    if len(word) > 1 and word[-1] in _SHORT_PARTICLES:
        return word[:-1]
    return word


def query_runs(surface: str) -> list[str]:
    """The Hangul runs of at least two syllables in `surface` (NFC), the last one
    without a trailing particle.

    A query word's fallback matches when every run occurs as a phrase of its
    grams (`run_grams`); single syllables are left out (too common to be
    evidence by themselves: the morphological match covers them).
    """
    runs = [
        run[:MAX_RUN_CHARS]
        for run in _HANGUL_RUN.findall(unicodedata.normalize("NFC", surface))
        if len(run) >= 2
    ]
    if runs and surface.rstrip().endswith(runs[-1]):
        last = runs[-1]
        for particle in _PARTICLES:
            if last.endswith(particle) and len(last) - len(particle) >= 2:
                runs[-1] = last[: -len(particle)]
                break
    return runs


def run_grams(run: str) -> list[str]:
    """The grams of one Hangul run, in order."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def has_hangul(text: str) -> bool:
    """Whether `text` holds a Hangul syllable."""
    return _HANGUL_RUN.search(text) is not None
