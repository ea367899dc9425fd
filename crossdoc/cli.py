"""The `crossdoc` command: serve, import, reindex, worker, audit, keys, users."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from auth.access import VISIBILITIES
from crossdoc import __version__
from crossdoc.settings import Settings
from crossdoc.wiring import cli as roots
from crossdoc.wiring.core import ConfigurationError, Core
from services.audit import AuditService
from services.documents import Caller
from storage.catalog.ports import CatalogStore
from storage.catalog.records import AuditFilter, OutboxOwnerRecord

app = typer.Typer(
    help="Crossdoc: cross-ministry document cloud (범정부 문서 클라우드).",
    no_args_is_help=True,
    add_completion=False,
    # Click's plain help, not Rich panels: no `<bool>` type beside every flag, and
    # long help and choices wrap instead of being cut at 80 columns. It applies to
    # every sub-command group too (Typer hands the root's mode down).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
console = Console(stderr=True)

T = TypeVar("T")

IMPORT_OWNER = "@import"  # not a valid username: imported documents are owned by no person


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _built(build: Callable[[Settings], T], settings: Settings) -> T:
    """What `build` (a root in `crossdoc.wiring.cli`) makes, or exit 2 on bad settings."""
    try:
        return build(settings)
    except ConfigurationError as err:
        console.print(f"[red]configuration error:[/red] {err}")
        raise typer.Exit(2) from err


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"crossdoc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Crossdoc: cross-ministry document cloud (범정부 문서 클라우드)."""


# A short summary: the command list's column is as wide as its longest name (`replication`).
@app.command(short_help="Run the API (and the in-process indexer by default).")
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="API processes sharing the port (default: CROSSDOC_API_WORKERS, 1); above 1, "
            "one more process indexes (embedded task queue)",
        ),
    ] = None,
) -> None:
    """Run the API (and the in-process indexer on the embedded default)."""
    # The API process, with its own root (`crossdoc.wiring.api`): the one command
    # that loads the web package (`tests/test_architecture.py` allows it here only).
    from search_api.server import run_server

    _setup_logging()
    settings = Settings()
    if workers is not None:
        settings = settings.model_copy(update={"api_workers": workers})
    _built(lambda settings: run_server(settings, host, port, console), settings)


@app.command()
def worker() -> None:
    """Run an indexing worker (Celery) for the scale-out deployment."""
    settings = Settings()
    if not settings.broker_url:
        console.print(
            "[red]no broker configured.[/red] On the embedded default, `crossdoc serve` indexes "
            "in-process; set CROSSDOC_BROKER_URL (Redis) to run separate workers."
        )
        raise typer.Exit(2)
    from crossdoc.wiring.worker import CeleryWorker

    _setup_logging()
    celery_worker = _built(CeleryWorker, settings)
    # In the foreground until SIGTERM/SIGINT (a warm shutdown: the batch being
    # indexed ends, the claims are handed back); exit 0 after a clean stop.
    code = celery_worker.run()
    raise typer.Exit(code)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _hash_file(path: Path) -> tuple[str, int, bytes]:
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if not head:
                head = chunk[:8192]
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, head


def _drain_if_possible(services: Core, quiet: bool = False) -> None:
    """Index queued documents in this process; fine to skip when a server holds the index."""
    from indexer.claims import ClaimKeeper
    from indexer.worker import drain_once

    backlog = services.catalog.outbox.backlog()
    if not backlog:
        return
    keeper = ClaimKeeper(services.catalog)
    try:
        owner = keeper.ensure_registered()
        keeper.reclaim()
        with Progress(
            TextColumn("색인 · indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            task = progress.add_task("index", total=backlog)
            settings = services.settings
            while n := drain_once(
                services.catalog,
                services.pipeline,
                settings.worker_batch_size,
                batch_bytes=settings.worker_batch_bytes,
                owner=owner,
            ):
                progress.advance(task, n)
        keeper.release()
    except Exception as err:  # noqa: BLE001 - a running server will index them instead
        console.print(
            f"[yellow]documents are queued; the running server indexes them ({err})[/yellow]"
        )


IMPORT_BATCH = 64


def _live_indexers(catalog: CatalogStore) -> list[OutboxOwnerRecord]:
    """Worker processes indexing from this catalog's outbox now (a running server's
    in-process worker, `crossdoc worker`s): registered and not provably gone."""
    from indexer.claims import ClaimOwner, owner_is_gone

    me = ClaimOwner.this_process()
    return [owner for owner in catalog.outbox.owners() if not owner_is_gone(owner, me)]


def _indexer_names(owners: list[OutboxOwnerRecord]) -> str:
    return ", ".join(f"pid {o.pid} on {o.host.split('/')[0]}" for o in owners)


def _report_path(settings: Settings, given: Path | None) -> Path:
    if given is not None:
        return given
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return settings.data_dir / "import-reports" / f"import-{stamp}-{os.getpid()}.jsonl"


@app.command("import")
def import_(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, readable=True, metavar="DIR", help="the folder to import"
        ),
    ],
    department: Annotated[
        str, typer.Option("--department", metavar="CODE", help="owning department code")
    ],
    visibility: Annotated[
        str, typer.Option(metavar="VISIBILITY", help="private, department, ministry or government")
    ] = "department",
    tags: Annotated[
        str, typer.Option(metavar="TAGS", help="comma-separated tags for every document")
    ] = "",
    index: Annotated[bool, typer.Option(help="index now, unless a running server will")] = True,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="where to write the report of skipped files (JSON Lines; default: "
            "import-reports/ in the data dir)",
        ),
    ] = None,
) -> None:
    """Import a folder tree. Resumable: files already stored for the department are skipped.

    The source's folders become the department's folders (made where missing), and
    each file is filed in its own; the folder path is also kept as a tag, as before.
    Every file skipped is named, with why, in a report (JSON Lines: path, reason,
    document_id) whose path is printed at the end. Beside a running server (or
    `crossdoc worker`s) the documents are stored and queued, and that server's
    worker indexes them: follow with `crossdoc status`.
    """
    from services.folders import FolderService
    from storage.catalog.records import NewAuditEvent
    from storage.ingest import BulkItem, StagedFile, accept_documents

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    if visibility not in VISIBILITIES:
        console.print(f"[red]--visibility must be one of {', '.join(VISIBILITIES)}[/red]")
        raise typer.Exit(2)
    settings = Settings()
    services = _built(roots.for_import, settings)
    if services.catalog.organisation.get_department(department) is None:
        console.print(f"[red]no department {department!r}[/red]")
        raise typer.Exit(2)
    tag_list = tuple(t.strip() for t in tags.split(",") if t.strip())
    files = list(_walk(directory))
    # Index while importing, unless a running server (or worker) indexes from the
    # same outbox: then it indexes what this import queues (the embedded index
    # has one writer, which the server holds).
    indexers = _live_indexers(services.catalog) if index else []
    worker = services.worker
    if index and not indexers:
        worker.start()
    audit = NewAuditEvent(
        actor=IMPORT_OWNER,
        action="upload",
        detail={"via": "crossdoc import", "source": str(directory)},
    )
    folders = FolderService(services.catalog)
    folder_of: dict[Path, str | None] = {Path("."): None}
    imported = skipped = failed = 0
    #: The report's rows: every file not imported, with why.
    rows: list[dict[str, str]] = []
    #: Digest -> source path, of the files this run imported.
    imported_from: dict[str, Path] = {}
    start = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("가져오기 · importing", total=len(files))
        for first in range(0, len(files), IMPORT_BATCH):
            batch: list[BulkItem] = []
            sources: dict[int, Path] = {}
            for path in files[first : first + IMPORT_BATCH]:
                try:
                    sha256, size, head = _hash_file(path)
                except OSError as err:
                    failed += 1
                    console.print(f"[red]cannot read {path}: {err}[/red]")
                    rows.append(
                        {"path": str(path), "reason": "unreadable", "detail": str(err)[:300]}
                    )
                    continue
                rel = path.relative_to(directory)
                folder = (str(rel.parent),) if str(rel.parent) != "." else ()
                if rel.parent not in folder_of:
                    folder_of[rel.parent] = folders.ensure_path(
                        department, rel.parent.parts, Caller(IMPORT_OWNER)
                    )
                item = BulkItem(
                    StagedFile(path, sha256, size, head),
                    path.name,
                    tag_list + folder,
                    folder_of[rel.parent],
                )
                sources[id(item)] = path
                batch.append(item)
            known: dict[str, str] = {}
            for doc in services.catalog.documents.live_with_digests(
                department, [b.staged.sha256 for b in batch]
            ):
                known.setdefault(doc.sha256, doc.id)  # the oldest answers
            fresh: dict[str, BulkItem] = {}
            twins: list[tuple[Path, str]] = []
            for item in batch:
                sha256 = item.staged.sha256
                path = sources[id(item)]
                if sha256 in known:
                    skipped += 1
                    earlier = imported_from.get(sha256)
                    row = {"path": str(path), "document_id": known[sha256]}
                    if earlier is not None:
                        row |= {"reason": "same_as_imported_file", "same_as": str(earlier)}
                    else:
                        row |= {"reason": "already_stored"}
                    rows.append(row)
                elif sha256 in fresh:
                    skipped += 1
                    twins.append((path, sha256))
                else:
                    fresh[sha256] = item
            if fresh:
                made = accept_documents(
                    services.catalog,
                    services.store,
                    list(fresh.values()),
                    department=department,
                    owner=IMPORT_OWNER,
                    visibility=visibility,
                    audit=audit,
                )
                for item, doc in zip(fresh.values(), made, strict=True):
                    imported_from[item.staged.sha256] = sources[id(item)]
                    known[item.staged.sha256] = doc.id
                imported += len(fresh)
                worker.notify()
            for path, sha256 in twins:
                rows.append(
                    {
                        "path": str(path),
                        "reason": "same_as_imported_file",
                        "document_id": known[sha256],
                        "same_as": str(imported_from[sha256]),
                    }
                )
            progress.advance(task, len(files[first : first + IMPORT_BATCH]))
    elapsed = time.monotonic() - start
    console.print(
        f"imported {imported}, skipped {skipped} already stored, {failed} unreadable "
        f"in {elapsed:.1f}s"
    )
    report_file = _report_path(settings, report)
    _write_report(report_file, rows)
    # One line, as written (a path is neither wrapped nor read as markup).
    console.print(
        f"건너뛴 파일 {len(rows)}개 보고서 · report of the {len(rows)} files not imported: "
        f"{report_file}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    if indexers:
        backlog = services.catalog.outbox.backlog()
        console.print(
            f"색인은 실행 중인 서버가 합니다 · the running server indexes them "
            f"({_indexer_names(indexers)}): {backlog} documents waiting. "
            "진행 상황 · progress: crossdoc status",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    worker.stop()
    if index and not indexers:
        _drain_if_possible(services)
    services.close()
    if failed:
        raise typer.Exit(1)


def _write_report(path: Path, rows: list[dict[str, str]]) -> None:
    """The import's report: one JSON object a line (path, reason, document_id…)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as err:
        console.print(f"[red]cannot write the report {path}: {err}[/red]")
        raise typer.Exit(1) from err


@app.command()
def status(
    wait: Annotated[
        bool, typer.Option(help="wait until nothing is left to index, showing progress")
    ] = False,
) -> None:
    """Documents by status and what waits to be indexed.

    Also the live indexers (a running server, `crossdoc worker`s); `--wait` follows
    the queue until it is empty.
    """
    from indexer.pipeline import has_text

    catalog = _built(roots.for_status, Settings())
    try:
        counts: dict[str, int] = {"pending": 0, "indexed": 0, "no_text": 0, "failed": 0}
        for (state, detail), n in catalog.documents.status_counts().items():
            counts[state] = counts.get(state, 0) + n
            if state == "indexed" and has_text(state, detail) is False:
                counts["no_text"] += n
        typer.echo(
            f"문서 · documents: {sum(n for k, n in counts.items() if k != 'no_text')} "
            f"(pending {counts['pending']}, indexed {counts['indexed']} of which "
            f"{counts['no_text']} without text, failed {counts['failed']})"
        )
        backlog = catalog.outbox.backlog()
        typer.echo(f"색인 대기 · waiting to be indexed: {backlog}")
        indexers = _live_indexers(catalog)
        typer.echo(
            f"색인 작업자 · indexers: {_indexer_names(indexers)}"
            if indexers
            else "색인 작업자 · indexers: none running (`crossdoc serve` or `crossdoc worker` "
            "indexes what waits)"
        )
        if wait and backlog:
            if not indexers:
                console.print(
                    "[red]nothing indexes this catalog now:[/red] start `crossdoc serve` "
                    "(or `crossdoc worker`)"
                )
                raise typer.Exit(1)
            _wait_for_backlog(catalog, backlog)
    finally:
        catalog.close()


def _wait_for_backlog(catalog: CatalogStore, backlog: int) -> None:
    """Show the outbox draining until it is empty (new work may join it meanwhile)."""
    with Progress(
        TextColumn("색인 · indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("index", total=backlog)
        seen = backlog
        while backlog:
            time.sleep(0.5)
            backlog = catalog.outbox.backlog()
            seen = max(seen, backlog)
            progress.update(task, total=seen, completed=seen - backlog)


@app.command()
def reindex(
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Drop a rebuild left behind by an interrupted reindex (Elasticsearch/"
            "OpenSearch), then rebuild.",
        ),
    ] = False,
) -> None:
    """Rebuild the search index from the object store and the catalog.

    The new index is built beside the live one and swapped in: searches keep working
    meanwhile, and changes made during the rebuild reach it. With the embedded index
    held by a running `crossdoc serve`, the server does the rebuild (asked through a
    file in the index directory)."""
    from indexer.errors import IndexBusyError, RebuildInProgressError
    from indexer.pipeline import TRANSIENT_ERRORS
    from indexer.rebuild import (
        RebuildableIndex,
        RebuildRequestError,
        rebuild_index,
        request_rebuild,
    )

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    settings = Settings()
    services = _built(roots.for_reindex, settings)
    index = services.index
    refusals: tuple[type[Exception], ...] = (
        *TRANSIENT_ERRORS,
        RebuildInProgressError,
        ConfigurationError,  # e.g. an edited user dictionary that does not parse
    )
    if not isinstance(index, RebuildableIndex):  # pragma: no cover (every adapter is)
        services.close()
        raise typer.Exit(2)
    with Progress(
        TextColumn("재색인 · reindexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("reindex", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        try:
            if restart:
                index.abort_rebuild()
            report = rebuild_index(services.catalog, services.pipeline, index, progress=progress)
            count = report.count
        except IndexBusyError:
            # The embedded index has one writer, the running server: it rebuilds.
            services.close()
            console.print("the server holds the index: asking it to rebuild (it keeps serving)")
            try:
                status = request_rebuild(settings.index_dir, progress=progress)
            except RebuildRequestError as err:
                console.print(f"[red]reindex failed:[/red] {err}")
                raise typer.Exit(1) from err
            count = int(status.get("count", 0))
            console.print(f"index holds {count} documents")
            return
        except refusals as err:
            services.close()
            console.print(f"[red]reindex failed (the live index is unchanged):[/red] {err}")
            raise typer.Exit(1) from err
    console.print(f"index holds {count} documents")
    services.close()


audit_app = typer.Typer(help="The audit log: verify its hash chain, export it.")
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="Token signing keys.")
app.add_typer(keys_app, name="keys")

CLI_ACTOR = "@cli"  # not a valid username: an operator at the command line


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        console.print(f"[red]{name}: use an ISO 8601 date or time[/red]")
        raise typer.Exit(2) from err
    # Times without a zone are Korean times, as in the API.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("Asia/Seoul"))


@audit_app.command("verify")
def audit_verify() -> None:
    """Re-hash the whole audit log. Exit 1 naming the first record edited or removed."""
    catalog = _built(roots.for_audit, Settings())
    try:
        ok, checked, problem = AuditService(catalog).verify_chain()
    finally:
        catalog.close()
    if not ok:
        console.print(f"[red]감사 기록 변조 · audit log tampered:[/red] {problem}")
        console.print(f"({checked} records before it verify)")
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {checked} records verified")


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="from this date or time (ISO 8601; KST if no zone)"),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help="before this date or time")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="file to write (default: stdout)"),
    ] = None,
) -> None:
    """Export the audit log as JSON Lines. One event a line, with its chain hashes."""
    since_at, until_at = _parse_time(since, "--since"), _parse_time(until, "--until")
    catalog = _built(roots.for_audit, Settings())
    try:
        lines = AuditService(catalog).export(
            AuditFilter(since=since_at, until=until_at),
            Caller(CLI_ACTOR),
            {
                "since": since_at.isoformat() if since_at else None,
                "until": until_at.isoformat() if until_at else None,
                "output": str(output) if output else "-",
            },
        )
        count = 0
        # Bytes, UTF-8, whatever the terminal's locale.
        with output.open("wb") if output else contextlib.nullcontext(sys.stdout.buffer) as out:
            for line in lines:
                out.write(line.encode("utf-8"))
                count += 1
            out.flush()
    finally:
        catalog.close()
    console.print(f"exported {count} audit records")


@keys_app.command("rotate")
def keys_rotate(
    drop_old: Annotated[
        bool,
        typer.Option(
            "--drop-old",
            help="refuse every token signed with an older key at once (after a leak)",
        ),
    ] = False,
) -> None:
    """Sign new tokens with a new key. A running server picks it up without a restart.

    Tokens signed with older keys keep working until they expire, unless --drop-old.
    """
    from auth.keys import KeyRingError, rotate_keys

    settings = Settings()
    lifetime = max(
        timedelta(minutes=settings.access_token_minutes),
        timedelta(hours=settings.refresh_token_hours),
    )
    try:
        keys = rotate_keys(settings.keys_file, lifetime, drop_old=drop_old)
    except KeyRingError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    typer.echo(f"new signing key {keys.current} in {settings.keys_file}")
    if drop_old:
        console.print("tokens signed with older keys are refused from now on")
    else:
        console.print(f"older keys verify their tokens for {lifetime} more, then are dropped")


users_app = typer.Typer(help="User accounts (사용자 계정): recover a lost password.")
app.add_typer(users_app, name="users")


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument(help="the user, e.g. admin")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="read the new password from standard input (then no change is forced)",
        ),
    ] = False,
) -> None:
    """Reset a user's password (admin recovery too).

    Prints a new one-time password on standard output, to be changed at next
    sign-in; or sets the one read from standard input. Every token of the user is
    revoked; the reset is audited as made by `system` (via the command line). A
    sign-in lockout ends with it.
    """
    from auth.passwords import PasswordPolicyError
    from services.accounts import SYSTEM_ACTOR, AccountService
    from storage.errors import NotFoundError

    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    catalog, passwords, lifetime = _built(roots.for_users, Settings())
    accounts = AccountService(catalog, passwords.hash, passwords.verify, lifetime)
    try:
        result = accounts.reset_password(
            username.strip().lower(),
            Caller(SYSTEM_ACTOR),
            password,
            via="cli",
            must_change=password is None,
        )
    except NotFoundError as err:
        console.print(f"[red]사용자가 없습니다 · no such user:[/red] {username}")
        raise typer.Exit(1) from err
    except PasswordPolicyError as err:
        console.print(f"[red]비밀번호 정책 · password policy:[/red] {err}")
        raise typer.Exit(2) from err
    finally:
        catalog.close()
    if result.password is not None:
        console.print(
            f"'{result.user.username}'의 임시 비밀번호 (다음 로그인 때 바꿔야 합니다) · "
            "one-time password (to be changed at next sign-in):"
        )
        typer.echo(result.password)
    else:
        console.print(f"'{result.user.username}' 비밀번호를 바꿨습니다 · password set")


trash_app = typer.Typer(help="The trash (휴지통): purge what is past its retention.")
app.add_typer(trash_app, name="trash")


@trash_app.command("purge")
def trash_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be purged; change nothing")
    ] = False,
) -> None:
    """Purge deleted documents past CROSSDOC_TRASH_RETENTION_DAYS (30).

    They leave the index and the trash for good (no restore); their original
    bytes stay in the object store. Each purge is audited, as made by `system`
    (via the command line). Safe to run again, also beside a running server
    (whose worker purges them on its own too).
    """
    from services.trash import TrashService

    catalog, retention = _built(roots.for_trash, Settings())
    trash = TrashService(catalog, retention)
    try:
        if dry_run:
            due = trash.due()
            for doc in due:
                typer.echo(
                    f"{doc.id}\t{doc.deleted_at:%Y-%m-%d}\t{doc.deleted_by or '-'}\t{doc.title}"
                )
            console.print(f"비울 문서 {len(due)}건 (바꾼 것 없음) · {len(due)} to purge (dry run)")
            return
        purged = trash.purge_due(CLI_ACTOR)
    finally:
        catalog.close()
    console.print(f"비운 문서 {len(purged)}건 · purged {len(purged)} documents")


# The second site: `crossdoc replication …` and `crossdoc scrub` (crossdoc/cli_replication.py).
from crossdoc.cli_replication import replication_app, scrub  # noqa: E402

app.add_typer(replication_app, name="replication")
app.command("scrub")(scrub)
backup_app = typer.Typer(help="The second site (제2 사이트): catalog snapshots onto the replica.")
app.add_typer(backup_app, name="backup")


@backup_app.command("catalog")
def backup_catalog(
    every: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="keep running, one snapshot every SECONDS (default: one snapshot, then exit)",
        ),
    ] = None,
) -> None:
    """Snapshot the catalog onto the replica, under catalog/.

    The replica is CROSSDOC_REPLICA_URL. SQLite: the online-backup API, while
    the service runs; PostgreSQL: pg_dump.
    The snapshot is checksummed and catalog/latest points at it once it is durable.
    """
    from crossdoc.wiring.backup import CatalogBackupLoop, backup_catalog
    from storage.errors import StorageError

    _setup_logging()
    settings = Settings()
    if every is not None:
        if every <= 0:
            console.print("[red]--every must be positive[/red]")
            raise typer.Exit(2)
        loop = _built(CatalogBackupLoop, settings)
        stop = False
        while not stop:
            loop.run_once()
            try:
                time.sleep(every)
            except KeyboardInterrupt:
                stop = True
        return
    try:
        manifest = _built(backup_catalog, settings)
    except StorageError as err:
        console.print(f"[red]카탈로그 백업 실패 · catalog backup failed:[/red] {err}")
        raise typer.Exit(1) from err
    typer.echo(f"catalog snapshot {manifest.key} ({manifest.size} bytes, sha256 {manifest.sha256})")


def _print_report(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def _target_bucket(storage_url: str | None) -> str | None:
    """The bucket of `--storage-url s3://BUCKET` (None without the option); exit 2 otherwise."""
    if storage_url is None:
        return None
    bucket = storage_url.removeprefix("s3://").strip("/")
    if not storage_url.startswith("s3://") or not bucket or "/" in bucket:
        console.print(
            "[red]--storage-url:[/red] s3://BUCKET (originals in a directory: leave it out)"
        )
        raise typer.Exit(2)
    return bucket


_STORAGE_URL_HELP = (
    "originals into this S3 bucket (empty or absent), at CROSSDOC_S3_ENDPOINT "
    "with CROSSDOC_S3_ACCESS_KEY/_SECRET_KEY (default: DIR/objects)"
)


@app.command("restore")
def restore_cmd(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="REPLICA",
            help="the second site: a directory (file:///PATH or /PATH) or s3://BUCKET",
        ),
    ],
    target: Annotated[
        Path,
        typer.Option("--to", metavar="DIR", help="an empty directory: the new data directory"),
    ],
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="PostgreSQL catalog: an empty database to load the snapshot into",
        ),
    ] = None,
    storage_url: Annotated[
        str | None, typer.Option(metavar="s3://BUCKET", help=_STORAGE_URL_HELP)
    ] = None,
    search_index: Annotated[
        str | None,
        typer.Option(
            metavar="ALIAS",
            help="with CROSSDOC_SEARCH_URL: the index is rebuilt there under this new alias "
            "(default CROSSDOC_SEARCH_INDEX; refused if it exists)",
        ),
    ] = None,
) -> None:
    """Rebuild a working deployment in DIR from the second site alone.

    The newest catalog snapshot (checked against its SHA-256), every original
    re-hashed against the catalog, the audit chain verified, the index rebuilt.
    Scale-out targets: --database-url (PostgreSQL), --storage-url (S3) and,
    with CROSSDOC_SEARCH_URL set, --search-index; each must be empty. Then
    `crossdoc serve` with the settings printed at the end. Exit 1 if anything
    is missing or altered (listed), or if the snapshot is corrupt.
    """
    from crossdoc.wiring.backup import RestoreTargets, restore_into
    from storage.errors import StorageError

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    try:
        settings = Settings(replica_url=source)
    except ValueError as err:
        console.print(f"[red]--from:[/red] {err}")
        raise typer.Exit(2) from err
    if search_index is None and settings.search_url != "embedded":
        search_index = settings.search_index
    targets = RestoreTargets(target, database_url, _target_bucket(storage_url), search_index)
    try:
        report = _built(
            lambda s: restore_into(s, targets, lambda step: console.print(f"… {step}")),
            settings,
        )
    except StorageError as err:
        console.print(f"[red]복원 실패 · restore failed:[/red] {err}")
        raise typer.Exit(1) from err
    _print_report(report.lines())
    if not report.ok:
        console.print("[red]복원에 손실이 있습니다 · the restore is incomplete (see above)[/red]")
        raise typer.Exit(1)
    serve = " ".join(f"{k}={v}" for k, v in targets.serve_settings().items())
    typer.echo(f"restored into {target}: {serve} crossdoc serve")


@app.command()
def drill(
    scratch: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="where to restore (default: a new directory, removed)"),
    ] = None,
    keep: Annotated[bool, typer.Option(help="keep what the drill restored")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="PostgreSQL catalog: an empty scratch database (emptied again afterwards)",
        ),
    ] = None,
    storage_url: Annotated[
        str | None,
        typer.Option(
            metavar="s3://BUCKET",
            help="originals on S3: an empty scratch bucket at CROSSDOC_S3_ENDPOINT "
            "(emptied afterwards, removed if the drill made it)",
        ),
    ] = None,
    search_index: Annotated[
        str | None,
        typer.Option(
            metavar="ALIAS",
            help="index on CROSSDOC_SEARCH_URL: a new scratch alias, deleted afterwards "
            "(default: <CROSSDOC_SEARCH_INDEX>-drill-<time>)",
        ),
    ] = None,
) -> None:
    """Rehearse a restore beside the running service, and report it.

    The second site is restored into scratch targets of the deployment's own
    kinds (a directory; a PostgreSQL database, an S3 bucket and a search index
    for a scale-out one), never its own, which it only reads. Documents
    restored, bytes verified, mismatches, seconds per step, RTO, the catalog
    snapshot's age; then the scratch copies are removed. Exit 1 on any loss or
    mismatch.
    """
    import shutil
    import tempfile

    from crossdoc.wiring.backup import DrillResult, drill_targets
    from crossdoc.wiring.backup import drill as run_drill
    from storage.errors import StorageError

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    settings = Settings()
    if not settings.replica_url:
        console.print(
            "[red]set CROSSDOC_REPLICA_URL: the drill restores from the second site[/red]"
        )
        raise typer.Exit(2)
    bucket = _target_bucket(storage_url)
    if scratch is None:
        base = Path(tempfile.mkdtemp(prefix="crossdoc-drill-"))
        target = base / "data"
    else:
        base, target = scratch, scratch
    result = DrillResult()
    try:
        targets = _built(
            lambda s: drill_targets(
                s, target, database_url=database_url, bucket=bucket, search_index=search_index
            ),
            settings,
        )
        result = _built(
            lambda s: run_drill(s, targets, lambda step: console.print(f"… {step}"), keep=keep),
            settings,
        )
    except StorageError as err:
        console.print(f"[red]복원 훈련 실패 · drill failed:[/red] {err}")
    finally:
        if not keep and scratch is None:
            shutil.rmtree(base, ignore_errors=True)
    if result.error:
        console.print(f"[red]복원 훈련 실패 · drill failed:[/red] {result.error}")
    report = result.report
    if report is not None:
        typer.echo("복원 훈련 · restore drill")
        _print_report(report.lines())
    for line in result.cleaned:
        typer.echo(f"정리 · removed: {line}")
    for line in result.cleanup_errors:
        console.print(f"[red]정리 실패 · clean-up failed:[/red] {line}")
    if report is None or not report.ok:
        console.print("[red]훈련 실패 · DRILL FAILED: data would be lost[/red]")
        raise typer.Exit(1)
    if result.cleanup_errors:
        raise typer.Exit(1)
    typer.echo("훈련 통과 · drill passed")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
