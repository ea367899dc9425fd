"""The `crossdoc` command: serve, import, reindex, worker, audit, keys, users."""

from __future__ import annotations

import contextlib
import hashlib
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
from storage.catalog.records import AuditFilter

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


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 8000,
) -> None:
    """Run the API (and the in-process indexer on the embedded default)."""
    # The API process, with its own root (`crossdoc.wiring.api`): the one command
    # that loads the web package (`tests/test_architecture.py` allows it here only).
    from search_api.server import run_server

    _setup_logging()
    _built(lambda settings: run_server(settings, host, port, console), Settings())


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
) -> None:
    """Import a folder tree. Resumable: files already stored for the department are skipped."""
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
    # Index while importing (this process holds the index unless a server does).
    worker = services.worker
    if index:
        worker.start()
    audit = NewAuditEvent(
        actor=IMPORT_OWNER,
        action="upload",
        detail={"via": "crossdoc import", "source": str(directory)},
    )
    imported = skipped = failed = 0
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
            for path in files[first : first + IMPORT_BATCH]:
                try:
                    sha256, size, head = _hash_file(path)
                except OSError as err:
                    failed += 1
                    console.print(f"[red]cannot read {path}: {err}[/red]")
                    continue
                rel = path.relative_to(directory)
                folder = (str(rel.parent),) if str(rel.parent) != "." else ()
                batch.append(
                    BulkItem(StagedFile(path, sha256, size, head), path.name, tag_list + folder)
                )
            known = services.catalog.documents.existing_sha256(
                [b.staged.sha256 for b in batch], department
            )
            fresh: dict[str, BulkItem] = {}
            for item in batch:
                if item.staged.sha256 in known or item.staged.sha256 in fresh:
                    skipped += 1
                else:
                    fresh[item.staged.sha256] = item
            if fresh:
                accept_documents(
                    services.catalog,
                    services.store,
                    list(fresh.values()),
                    department=department,
                    owner=IMPORT_OWNER,
                    visibility=visibility,
                    audit=audit,
                )
                imported += len(fresh)
                worker.notify()
            progress.advance(task, len(files[first : first + IMPORT_BATCH]))
    elapsed = time.monotonic() - start
    console.print(
        f"imported {imported}, skipped {skipped} already stored, {failed} unreadable "
        f"in {elapsed:.1f}s"
    )
    worker.stop()
    if index:
        _drain_if_possible(services)
    services.close()
    if failed:
        raise typer.Exit(1)


@app.command()
def reindex() -> None:
    """Rebuild the search index from the object store and the catalog."""
    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    services = _built(roots.for_reindex, Settings())
    try:
        services.index.clear()
    except Exception as err:
        console.print(
            f"[red]cannot write the index ({err}).[/red] Stop `crossdoc serve` first: the embedded "
            "index has one writer."
        )
        services.close()
        raise typer.Exit(1) from err
    queued = services.catalog.documents.mark_all_for_reindex()
    console.print(f"{queued} documents queued for re-indexing")
    _drain_if_possible(services)
    console.print(f"index holds {services.index.count()} documents")
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
) -> None:
    """Rebuild a working deployment in DIR from the second site alone.

    The newest catalog snapshot (checked against its SHA-256), every original
    re-hashed against the catalog, the audit chain verified, the index rebuilt.
    Then `CROSSDOC_DATA_DIR=DIR crossdoc serve` (with CROSSDOC_DATABASE_URL=URL for
    a PostgreSQL catalog). Exit 1 if anything is missing or altered (listed), or
    if the snapshot is corrupt.
    """
    from crossdoc.wiring.backup import restore_into
    from storage.errors import StorageError

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    try:
        settings = Settings(replica_url=source)
    except ValueError as err:
        console.print(f"[red]--from:[/red] {err}")
        raise typer.Exit(2) from err
    try:
        report = _built(
            lambda s: restore_into(
                s, target, lambda step: console.print(f"… {step}"), database_url=database_url
            ),
            settings,
        )
    except StorageError as err:
        console.print(f"[red]복원 실패 · restore failed:[/red] {err}")
        raise typer.Exit(1) from err
    _print_report(report.lines())
    if not report.ok:
        console.print("[red]복원에 손실이 있습니다 · the restore is incomplete (see above)[/red]")
        raise typer.Exit(1)
    typer.echo(f"restored into {target}: CROSSDOC_DATA_DIR={target} crossdoc serve")


@app.command()
def drill(
    scratch: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="where to restore (default: a new directory, removed)"),
    ] = None,
    keep: Annotated[bool, typer.Option(help="keep the restored directory")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="PostgreSQL catalog: an empty scratch database (emptied again afterwards)",
        ),
    ] = None,
) -> None:
    """Rehearse a restore beside the running service, and report it.

    The second site is restored into a scratch directory. Documents restored,
    bytes verified, mismatches, RTO, the catalog snapshot's
    age. Exit 1 on any loss or mismatch.
    """
    import shutil
    import tempfile

    from crossdoc.wiring.backup import restore_into
    from storage.errors import StorageError

    _setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    settings = Settings()
    if not settings.replica_url:
        console.print(
            "[red]set CROSSDOC_REPLICA_URL: the drill restores from the second site[/red]"
        )
        raise typer.Exit(2)
    if scratch is None:
        base = Path(tempfile.mkdtemp(prefix="crossdoc-drill-"))
        target = base / "data"
    else:
        base, target = scratch, scratch
    ok = False
    try:
        report = _built(
            lambda s: restore_into(
                s, target, lambda step: console.print(f"… {step}"), database_url=database_url
            ),
            settings,
        )
        typer.echo("복원 훈련 · restore drill")
        _print_report(report.lines())
        ok = report.ok
    except StorageError as err:
        console.print(f"[red]복원 훈련 실패 · drill failed:[/red] {err}")
    finally:
        if not keep:
            if scratch is None:
                shutil.rmtree(base, ignore_errors=True)
            if database_url:
                from storage.backup import drop_catalog

                drop_catalog(database_url)
    if not ok:
        console.print("[red]훈련 실패 · DRILL FAILED: data would be lost[/red]")
        raise typer.Exit(1)
    typer.echo("훈련 통과 · drill passed")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
