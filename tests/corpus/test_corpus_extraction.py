"""Every file of the shared real-world corpus through NativeTikaExtractor.

`../shared/corpus` (beside the checkout) holds Apache Tika's own test
documents and real HWP/HWPX files, ordinary and hostile. Each must end with a
status, never crash anything; a failure status must say why. Where the
corpus manifest says native Tika got text out of a file, we must return OK
with the same text (compared on a whitespace-free prefix).
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.extraction.base import Extraction, ExtractionStatus
from indexer.extraction.native import NativeTikaExtractor

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
FOLDERS = ("ordinary", "hostile", "hangul")
MANIFESTS = ("MANIFEST.tsv", "HANGUL_MANIFEST.tsv")
#: Characters of the manifest's text prefix compared (it is cut mid-word at ~60).
PREFIX_CHARS = 40

pytestmark = [
    pytest.mark.skipif(
        not CORPUS.is_dir(),
        reason=f"shared corpus not found at {CORPUS} (CI checks out shared/ beside the repo)",
    ),
]
pytest.importorskip("iscc_tika", reason="the embedded extractor needs the iscc-tika package")


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        path
        for folder in FOLDERS
        if (CORPUS / folder).is_dir()
        for path in (CORPUS / folder).iterdir()
        if path.is_file()
    )


def load_manifest() -> dict[tuple[str, str], dict[str, str]]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for name in MANIFESTS:
        path = CORPUS / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                rows[(row["folder"], row["file"])] = row
    return rows


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


FILES = corpus_files()
MANIFEST = load_manifest() if FILES else {}
RESULTS: dict[str, Extraction] = {}


@pytest.fixture(scope="module")
def extractor() -> Iterator[NativeTikaExtractor]:
    with NativeTikaExtractor(timeout_seconds=60) as instance:
        yield instance


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_corpus_file(extractor: NativeTikaExtractor, path: Path) -> None:
    result = extractor.extract(path, filename=path.name)
    RESULTS[f"{path.parent.name}/{path.name}"] = result

    assert result.content_type
    if result.status is ExtractionStatus.OK:
        assert result.text.strip()
    else:
        assert result.detail, f"{result.status.value} without a reason"
        assert result.text == ""

    row = MANIFEST.get((path.parent.name, path.name))
    if row is None or path.parent.name == "hangul":
        # HWP 5 / HWPX are read by our own code, not Tika: see test_corpus_hangul.py.
        return
    outcome = row["tika_outcome"]
    if outcome in ("text", "listing_only"):
        assert result.status is ExtractionStatus.OK, (
            f"Tika got text, we say {result.status_detail or result.status.value}"
        )
    prefix = squash(row.get("text_prefix", ""))[:PREFIX_CHARS]
    if outcome == "text" and prefix:
        assert squash(result.text).startswith(prefix), (
            f"text differs from the manifest: {result.text[:80]!r} vs {row['text_prefix']!r}"
        )


def test_corpus_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Report outcome counts (runs after the files, in definition order)."""
    counts = Counter(result.status.value for result in RESULTS.values())
    with capsys.disabled():
        print(
            f"\ncorpus extraction: {len(RESULTS)} files, "
            + ", ".join(f"{status}={count}" for status, count in sorted(counts.items()))
        )
    if len(RESULTS) == len(FILES):
        assert counts[ExtractionStatus.OK.value] > len(FILES) // 2


def test_corpus_runs_within_budget(extractor: NativeTikaExtractor) -> None:
    """Small ordinary documents keep a steady per-file latency on a warm child."""
    sample = [path for path in FILES if path.parent.name == "ordinary"][:20]
    extractor.extract(sample[0])
    started = time.perf_counter()
    for path in sample:
        extractor.extract(path)
    per_file = (time.perf_counter() - started) / len(sample)
    assert per_file < 1.0, f"{per_file:.3f} s per small file"
