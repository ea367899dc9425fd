"""Rebuilding the search index beside the live one, then swapping it in (no downtime).

`crossdoc reindex` while the server runs: searches keep reading the live index
until the new one is complete and caught up, then see the new one at once.

1. `begin_rebuild`: the index makes a new, empty index beside the live one (a
   Tantivy generation directory; an Elasticsearch/OpenSearch concrete index)
   and from then on every write of every worker reaches both (the writer
   process's own adapter on Tantivy; on Elasticsearch a marker alias every
   process looks at, hence `rebuild_settle_seconds`: the wait until every
   process has seen it).
2. The full pass writes every live document's current state into the new index
   from the catalog, the extraction cache and the object store, recording
   nothing in the catalog (its `indexed_revision` describes the live index).
3. The catch-up pass compares every document's catalog revision with the new
   index's and writes again what differs (a change whose double write came
   before the full pass wrote that document, a deletion overtaken by the pass).
   From then on the double writes keep the new index as current as the live one.
4. `finish_rebuild` swaps it in atomically (a pointer file under the writer's
   lock; one `_aliases` request) and deletes the old index after a grace period.

Any failure drops the new index (`abort_rebuild`): the live one was never touched.
Revisions make every write order safe: an index keeps the highest revision it
was given, whoever wrote it.

On the embedded index one process holds the writer: when it is the server, the
command asks it to rebuild through a request file in the index's home
(`RebuildRequests`, polled by the server) and follows the status file it writes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from indexer.errors import IndexerError
from indexer.index.base import SearchIndex
from indexer.pipeline import IndexingPipeline
from storage.catalog.ports import CatalogStore

log = logging.getLogger(__name__)

#: Documents read from the catalog and written to the new index at once.
REBUILD_BATCH = 200
REQUEST_FILE = "REBUILD-REQUEST.json"
STATUS_FILE = "REBUILD-STATUS.json"
#: How often the server looks for a request, and the command for the status.
POLL_SECONDS = 1.0
#: A request no process took within this long: nobody who holds the index serves it.
TAKE_TIMEOUT_SECONDS = 30.0
#: The rebuilding process rewrites its status at least this often...
HEARTBEAT_SECONDS = 5.0
#: ...so a status older than this means it stopped (killed, restarted) mid-way.
SILENCE_SECONDS = 60.0


@runtime_checkable
class RebuildableIndex(Protocol):
    """A `SearchIndex` that can be rebuilt beside itself and swapped (see the module)."""

    #: How long after `begin_rebuild` every process writing the index writes the
    #: new one too (0 when they all live in this process).
    rebuild_settle_seconds: float

    def begin_rebuild(self) -> SearchIndex:
        """Make a new, empty index beside the live one and return it (to write);
        every later write of the live index's writers reaches it too. Raises
        `RebuildInProgressError`, `IndexBusyError`, `SearchUnavailableError`."""
        ...

    def finish_rebuild(self) -> None:
        """Swap the new index in atomically; the old one is deleted after a grace period."""
        ...

    def abort_rebuild(self) -> None:
        """Drop the new index; the live one stays as it is. Idempotent."""
        ...


@dataclass(frozen=True)
class RebuildReport:
    #: Live documents written by the full pass.
    indexed: int
    #: Documents written again by the catch-up pass.
    caught_up: int
    #: Documents the index holds after the swap.
    count: int


def rebuild_index(
    catalog: CatalogStore,
    pipeline: IndexingPipeline,
    index: RebuildableIndex,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = REBUILD_BATCH,
) -> RebuildReport:
    """Rebuild `index` beside itself from the record and swap it in (see the module).

    `progress(done, total)` is called after each batch of the full pass. Raises
    what the index or the pipeline raise (the new index is then dropped).
    """
    target = index.begin_rebuild()
    try:
        time.sleep(index.rebuild_settle_seconds)
        total = catalog.documents.count()
        indexed = 0
        for ids in catalog.documents.all_ids(batch=batch):
            indexed += pipeline.index_into(target, ids)
            if progress is not None:
                progress(indexed, max(total, indexed))
        caught_up = catch_up(catalog, pipeline, target, batch=batch)
        count = target.count()
        index.finish_rebuild()
    except BaseException:
        index.abort_rebuild()
        raise
    log.info("search index rebuilt: %d documents, %d caught up", indexed, caught_up)
    return RebuildReport(indexed=indexed, caught_up=caught_up, count=count)


def catch_up(
    catalog: CatalogStore, pipeline: IndexingPipeline, target: SearchIndex, *, batch: int
) -> int:
    """Write again into `target` every document whose entry differs from the catalog
    (older revision, missing, or deleted since); returns how many."""
    redone = 0
    for ids in catalog.documents.all_ids(include_deleted=True, batch=batch):
        docs = catalog.documents.get_many(ids, include_deleted=True)
        held = target.revisions(ids)
        redo = [
            d.id
            for d in docs
            if (d.deleted_at is None and held.get(d.id, -1) < d.revision)
            or (d.deleted_at is not None and d.id in held)
        ]
        if redo:
            pipeline.index_into(target, redo)
            redone += len(redo)
    return redone


# -- asking the process that holds the embedded index's writer -------------------------


class RebuildRequestError(IndexerError):
    """The process holding the index did not take the request, or its rebuild failed."""


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def request_rebuild(
    home: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    take_timeout: float = TAKE_TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
    silence: float = SILENCE_SECONDS,
) -> dict[str, Any]:
    """Ask the process holding the index in `home` to rebuild it, and wait for the end.

    Returns the final status (`indexed`, `caught_up`, `count`). Raises
    `RebuildRequestError` when no process takes the request within `take_timeout`
    (the request is then withdrawn) or the rebuild failed.
    """
    request_id = uuid.uuid4().hex
    request = home / REQUEST_FILE
    _write_json(request, {"id": request_id})
    asked = time.monotonic()
    while True:
        time.sleep(poll)
        status = _read_json(home / STATUS_FILE)
        if status is None or status.get("id") != request_id:
            if time.monotonic() - asked > take_timeout:
                mine = _read_json(request)
                if mine is not None and mine.get("id") == request_id:
                    request.unlink(missing_ok=True)
                raise RebuildRequestError(
                    "the process holding the search index did not take the rebuild request "
                    f"within {take_timeout:.0f} s (a `crossdoc import`? try again when it ends)"
                )
            continue
        state = status.get("state")
        silent = time.time() - (home / STATUS_FILE).stat().st_mtime
        if state == "running" and silent > silence:
            raise RebuildRequestError(
                f"the process rebuilding the search index has said nothing for {silent:.0f} s "
                "(stopped?): the live index is unchanged; run `crossdoc reindex` again"
            )
        if state == "failed":
            raise RebuildRequestError(str(status.get("error", "the rebuild failed")))
        if state == "done":
            return status
        if progress is not None:
            progress(int(status.get("indexed", 0)), int(status.get("total", 0)))


class RebuildRequests:
    """A daemon thread in the process holding the embedded index: takes rebuild
    requests from the index's home and runs them (`run`), reporting in the
    status file. One at a time; the server keeps serving meanwhile."""

    def __init__(
        self, home: Path, run: Callable[[Callable[[int, int], None]], RebuildReport]
    ) -> None:
        self.home = home
        self._run_rebuild = run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="crossdoc-rebuild-requests", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.take_one()
            except Exception:
                log.exception("the rebuild request could not be served")

    def take_one(self) -> bool:
        """Run the pending request, if any (returns whether there was one)."""
        request = self.home / REQUEST_FILE
        asked = _read_json(request)
        if asked is None:
            return False
        request.unlink(missing_ok=True)
        request_id = str(asked.get("id", ""))
        status = self.home / STATUS_FILE

        running = {"id": request_id, "state": "running", "indexed": 0, "total": 0}
        lock = threading.Lock()
        done_event = threading.Event()

        def progress(done: int, total: int) -> None:
            with lock:
                running.update(indexed=done, total=total)
                _write_json(status, running)

        def heartbeat() -> None:
            # Batches and the catch-up pass can take long: say we are alive.
            while not done_event.wait(HEARTBEAT_SECONDS):
                with lock:
                    _write_json(status, running)

        progress(0, 0)
        beat = threading.Thread(target=heartbeat, name="crossdoc-rebuild-heartbeat", daemon=True)
        beat.start()
        outcome: dict[str, Any]
        try:
            report = self._run_rebuild(progress)
        except Exception as err:
            log.exception("rebuilding the search index failed")
            outcome = {"id": request_id, "state": "failed", "error": str(err)}
        else:
            outcome = {
                "id": request_id,
                "state": "done",
                "indexed": report.indexed,
                "caught_up": report.caught_up,
                "count": report.count,
            }
        finally:
            # Stopped before the outcome is written, so it never overwrites it.
            done_event.set()
            beat.join()
        _write_json(status, outcome)
        return True
