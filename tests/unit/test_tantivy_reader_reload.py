"""A read-only Tantivy index in one process sees another process's commit within a
bounded time, without being told (`crossdoc serve --workers N`: the API processes
search, one indexing process writes).

Tantivy's reader watches the index's meta file (every 500 ms) and reloads its
searchers when a commit changes it; this checks that our `TantivyIndex` relies on
it across processes, and that the reader never takes the writer's lock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import AccessFilter, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query

WRITE = """
import sys
from pathlib import Path
from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.tantivy_index import TantivyIndex
from tests.factories import index_doc
index = TantivyIndex(Path(sys.argv[1]), KoreanAnalyzer(), analysis=None)
index.upsert([index_doc(sys.argv[2], "예산 편성 지침 가나다라마바사")])
index.close()
"""

BOUND_SECONDS = 5.0


def test_a_commit_by_another_process_is_seen_within_a_bounded_time(tmp_path: Path) -> None:
    path = tmp_path / "index"
    reader = TantivyIndex(path, KoreanAnalyzer())
    try:
        assert reader.count() == 0
        # The writer runs while this process holds its reader open: no lock taken by reads.
        subprocess.run([sys.executable, "-c", WRITE, str(path), "d1"], check=True, timeout=120)
        committed = time.monotonic()
        request = SearchRequest(query=parse_user_query("가나다라마바사"), limit=10)
        while not reader.search(request, AccessFilter(frozenset({"gov"}))).hits:
            assert time.monotonic() - committed < BOUND_SECONDS, "the commit was not seen"
            time.sleep(0.05)
        assert reader.count() == 1
    finally:
        reader.close()
