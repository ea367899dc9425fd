"""The 87 real HWP 5 / HWPX files of `../shared/corpus/hangul`, through extractor and pipeline.

`HANGUL_MANIFEST.tsv` gives, per file, what the hwp-hwpx-parser package
extracted (`reference_outcome`, `reference_text_prefix`). Its `text` counts
14 files whose only output is markers ("[IMAGE]", "[^1]", empty Markdown
table cells): drawings, pictures and empty tables with no words in them. So:

- every file whose reference text has words must come out OK, holding the
  reference's words (compared without whitespace and table markup);
- no file may fail: each is OK or EMPTY (blank pages, drawings);
- and every file with text must be found through the whole pipeline (upload
  over HTTP, worker, index) by a word of its own text.

`bench/hangul_extraction.py` prints the same comparison with timings.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from indexer.extraction.base import Extraction, ExtractionStatus
from indexer.extraction.native import NativeTikaExtractor
from tests.conftest import CORPUS, Server, start_server

HANGUL = CORPUS / "hangul"
MANIFEST = CORPUS / "HANGUL_MANIFEST.tsv"
#: Files of the manifest whose reference text has real words (measured: 47 of 87).
MIN_REFERENCE_WITH_WORDS = 47

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HANGUL.is_dir() or not MANIFEST.is_file(),
        reason=f"the Hangul corpus is not at {HANGUL} (CI checks out shared/ beside the repo)",
    ),
]
pytest.importorskip("iscc_tika", reason="the embedded extractor needs the iscc-tika package")

_MARKERS = re.compile(r"\[IMAGE\]|\[\^e?\d+\]|\||-{3,}|\s+")


def words_only(text: str) -> str:
    return _MARKERS.sub("", text)


def load_manifest() -> dict[str, dict[str, str]]:
    if not MANIFEST.is_file():
        return {}
    with MANIFEST.open(encoding="utf-8", newline="") as handle:
        return {
            row["file"]: row
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        }


def reference_kind(row: dict[str, str]) -> str:
    """`text`, `markers` (text of markers only) or `empty`, from the manifest's reference."""
    if row["reference_outcome"] != "text":
        return row["reference_outcome"]
    return "text" if words_only(row["reference_text_prefix"]) else "markers"


ROWS = load_manifest()
FILES = sorted(path for path in HANGUL.iterdir() if path.is_file()) if HANGUL.is_dir() else []


@pytest.fixture(scope="module")
def results() -> dict[str, Extraction]:
    with NativeTikaExtractor(timeout_seconds=60) as extractor:
        return {path.name: extractor.extract(path, filename=path.name) for path in FILES}


def test_every_file_is_in_the_manifest() -> None:
    assert len(FILES) == 87
    assert {path.name for path in FILES} == set(ROWS)


def test_every_file_ends_ok_or_empty(results: dict[str, Extraction]) -> None:
    for name, result in results.items():
        assert result.status in (ExtractionStatus.OK, ExtractionStatus.EMPTY), (
            name,
            result.status_detail,
        )
        expected = "application/hwp+zip" if name.endswith(".hwpx") else "application/x-hwp"
        assert result.content_type == expected, name


def test_text_wherever_the_reference_has_words(results: dict[str, Extraction]) -> None:
    with_words = [name for name, row in ROWS.items() if reference_kind(row) == "text"]
    assert len(with_words) == MIN_REFERENCE_WITH_WORDS
    for name in with_words:
        result = results[name]
        assert result.status is ExtractionStatus.OK, (name, result.status_detail)
        reference = words_only(ROWS[name]["reference_text_prefix"])
        ours = words_only(result.text)
        if "배포용문서" in reference:
            # The reference read the notice Hangul leaves for old readers; we decrypt the text.
            assert "배포용문서입니다" not in ours[:200], name
            continue
        # Every word of the reference's opening (its last one may be cut) is in our text;
        # the order may differ (text boxes and tables nest paragraphs in other orders).
        opening = re.findall(r"\w+", _MARKERS.sub(" ", ROWS[name]["reference_text_prefix"]))
        for word in opening[:-1] or opening:
            assert word in ours, (name, word, result.text[:200])


def test_counts_against_the_manifest(
    results: dict[str, Extraction], capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = Counter(
        f"{reference_kind(row)}->{results[name].status.value}" for name, row in ROWS.items()
    )
    ok = sum(1 for result in results.values() if result.status is ExtractionStatus.OK)
    with capsys.disabled():
        print(f"\nHangul corpus: {ok}/{len(results)} with text; reference -> ours: {dict(pairs)}")
    assert pairs["empty->ok"] == 0  # nothing invented where the reference found nothing
    assert pairs["text->empty"] == 0
    assert ok >= MIN_REFERENCE_WITH_WORDS + 1  # the footnote file: the reference had markers only


@pytest.fixture(scope="module")
def hangul_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("hangul-corpus"))


def test_each_text_file_is_found_by_a_word_of_its_text(
    hangul_server: Server, results: dict[str, Extraction]
) -> None:
    server = hangul_server
    owner = server.user("hangul-archivist", "MOIS-REC")
    uploaded: dict[str, str] = {}
    with server.client(owner) as c:
        for path in FILES:
            if results[path.name].status is not ExtractionStatus.OK:
                continue
            # The corpus holds some files twice, under other names: each is its own case.
            r = c.post(
                "/documents",
                files={"file": (f"doc{len(uploaded)}.bin", path.read_bytes())},
                data={"allow_duplicate": "true"},
            )
            assert r.status_code == 202, r.text
            uploaded[path.name] = r.json()["id"]
        deadline = time.monotonic() + 300
        while server.services.catalog.outbox.backlog():
            assert time.monotonic() < deadline, "indexing did not finish in 5 minutes"
            time.sleep(0.2)
    missing = []
    for name, doc_id in uploaded.items():
        words = re.findall(r"\w+", results[name].text)
        assert words, name
        # The longest word of the first few: specific enough to find this document.
        word = max(words[:20], key=len)
        hits = server.search(owner, q=word, size=50)
        if doc_id not in {hit["id"] for hit in hits["hits"]}:
            missing.append((name, word))
    assert not missing, missing
