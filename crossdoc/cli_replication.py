"""`crossdoc replication status|drain|enqueue-all` and `crossdoc scrub`: the second site
from the command line (registered on the `crossdoc` app by `crossdoc.cli`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from crossdoc.settings import Settings
from crossdoc.wiring import cli as roots
from crossdoc.wiring.core import ConfigurationError
from crossdoc.wiring.replication import MB
from services.replication import ReplicationService
from storage.replica import Replicator
from storage.scrub import Scrubber, ScrubReport

console = Console(stderr=True)

replication_app = typer.Typer(help="The second site (복제): recovery point, copying the backlog.")


def _second_site() -> roots.SecondSite:
    try:
        return roots.for_second_site(Settings())
    except ConfigurationError as err:
        console.print(f"[red]configuration error:[/red] {err}")
        raise typer.Exit(2) from err


@replication_app.command("status")
def replication_status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The recovery point: backlog, oldest version, seconds at risk.

    Exit status 1 when a replica is configured but does not answer.
    """
    site = _second_site()
    try:
        status = ReplicationService(site.catalog, site.replica, site.settings.replication).status()
    finally:
        site.close()
    if as_json:
        typer.echo(json.dumps(status.as_dict(), ensure_ascii=False))
    elif not status.configured:
        typer.echo("복제 없음 · no replica configured (CROSSDOC_REPLICA_URL)")
    else:
        typer.echo(
            f"mode {status.mode}; replica "
            f"{'reachable' if status.replica_reachable else 'UNREACHABLE'}\n"
            f"backlog: {status.backlog_items} versions, {status.backlog_bytes} bytes\n"
            f"oldest unreplicated: {status.oldest_pending_at or '-'}\n"
            f"data at risk: {status.data_at_risk_seconds:.1f} s"
        )
        if status.last_error:
            typer.echo(f"last error: {status.last_error}")
    if status.configured and not status.replica_reachable:
        raise typer.Exit(1)


@replication_app.command("drain")
def replication_drain() -> None:
    """Copy the whole backlog to the replica now, in this process."""
    site = _second_site()
    try:
        if site.replica is None:
            console.print("[red]no replica configured (CROSSDOC_REPLICA_URL)[/red]")
            raise typer.Exit(2)
        replicator = Replicator(site.catalog, site.primary, site.replica, site.settings.spool_dir)
        replicator.drain()
        left = site.catalog.replication.backlog()
    finally:
        site.close()
    typer.echo(f"copied and verified {replicator.copied} blobs; {left.items} versions left")
    if left.items:
        raise typer.Exit(1)


@replication_app.command("enqueue-all")
def replication_enqueue_all() -> None:
    """Queue every version stored before the replica was added.

    Versions already queued are left alone.
    """
    site = _second_site()
    try:
        added = site.catalog.replication.enqueue_all()
    finally:
        site.close()
    typer.echo(f"{added} versions queued for the replica")


def scrub(
    rate: Annotated[
        float,
        typer.Option(
            "--rate", metavar="MB/S", min=0.0, help="read at most this many MB/s (0: no limit)"
        ),
    ] = 0.0,
    repair: Annotated[
        bool, typer.Option("--repair", help="repair bad or missing blobs from the good copy")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Re-hash every blob on both sites; --repair bad ones.

    Re-reads every blob against the catalog's SHA-256 and reports those
    corrupt or missing; --repair repairs them from the good copy (audited).
    Removes temporary files left by crashes. Prints the throughput in MB/s.
    Exit status 1 while a problem remains.
    """
    site = _second_site()
    try:
        scrubber = Scrubber(site.catalog, site.primary, site.replica, site.settings.spool_dir)
        report: ScrubReport = scrubber.run(rate_bytes=rate * MB if rate else None, repair=repair)
    finally:
        site.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for where, key, what in report.problems:
            typer.echo(f"{what} on the {where}: {key}")
        for where, key in report.repaired:
            typer.echo(f"repaired on the {where}: {key}")
        typer.echo(
            f"scrubbed {report.blobs} blobs, {report.bytes_read / MB:.1f} MB in "
            f"{report.seconds:.1f} s ({report.mb_per_s:.1f} MB/s); {len(report.problems)} "
            f"problems, {len(report.repaired)} repaired, {report.temp_files_removed} "
            "temporary files removed"
        )
    if report.unrepaired:
        raise typer.Exit(1)
