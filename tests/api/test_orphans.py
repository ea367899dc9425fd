"""No child outlives a SIGKILLed server (issue 9, defect 5).

The Korean-analysis child and `multiprocessing`'s resource tracker used to stay
alive, re-parented to PID 1, after the server was killed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.api.serve_process import ServeProcess, descendants, prepare_data_dir

HTML = (
    "<html><head><title>출생신고 안내</title></head><body>"
    + "<p>행정안전부는 출생신고 제도를 개선했다. 국민디자인단이 참여했다.</p>" * 50
    + "</body></html>"
).encode()


pytestmark = pytest.mark.embedded_only(
    "it SIGKILLs `crossdoc serve` and looks for the embedded engines' children it leaves (the "
    "analysis and extraction children); the full stack's worker kills are in test_celery_faults.py"
    " and test_full_stack_faults.py"
)


def test_no_child_outlives_a_killed_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    prepare_data_dir(data)
    server = ServeProcess(data)
    try:
        with server.client() as c:
            r = c.post("/documents", files={"file": ("안내.html", HTML, "text/html")})
            assert r.status_code == 202, r.text
            doc_id = r.json()["id"]
            deadline = time.monotonic() + 60
            while c.get(f"/documents/{doc_id}").json()["status"] == "pending":
                assert time.monotonic() < deadline, "not indexed within a minute"
                time.sleep(0.2)
        # Indexing started the extraction child and the analysis child.
        assert len(descendants(server.process.pid)) >= 2
    finally:
        had = server.kill()
    assert had
    assert server.survivors(had) == []
