"""Running the API process: `crossdoc serve` builds its root and hands it to uvicorn."""

from __future__ import annotations

import socket

from rich.console import Console

from crossdoc.settings import Settings
from crossdoc.wiring.api import build_services
from search_api.app import create_app
from services.bootstrap import bootstrap


def uvicorn_options(host: str, port: int) -> dict[str, object]:
    """How we run uvicorn, here and in the tests.

    httptools, through our protocol that answers the server layer's own refusals
    (malformed request line, URL over 64 KiB → 414, request head over 160 KiB → 431)
    in the JSON error shape. The 160 KiB head allowance lets an oversized
    Authorization header reach our token check and get a clean 401 (capped at 4 KiB
    there), instead of a reset connection.
    """
    from search_api.protocol import JsonErrorsHttpToolsProtocol

    return {
        "host": host,
        "port": port,
        "http": JsonErrorsHttpToolsProtocol,
        # No WebSocket routes: an Upgrade request is an ordinary HTTP request to us,
        # answered by the app (in JSON), not refused by the WebSocket layer in plain text.
        "ws": "none",
        "proxy_headers": False,
        "log_level": "info",
    }


def run_server(settings: Settings, host: str, port: int, console: Console) -> None:
    """Build the API's services, create the first users, and serve until stopped.

    With `settings.api_workers` above 1, this process only supervises: the API
    processes and, on the embedded task queue, the indexing process
    (`crossdoc.supervisor`). Raises `crossdoc.wiring.core.ConfigurationError`
    before serving on bad settings.
    """
    import uvicorn

    services = build_services(settings)
    report = bootstrap(
        services.catalog,
        services.passwords.hash,
        admin_password=settings.admin_password.get_secret_value()
        if settings.admin_password
        else None,
        demo=settings.demo,
        verify_password=services.passwords.verify,
    )
    if report.admin_password_ignored:
        console.print(
            "[bold yellow]CROSSDOC_ADMIN_PASSWORD 무시됨 · ignored:[/bold yellow] 'admin' "
            "exists with another password. 관리자 비밀번호 재설정 · to reset it: "
            "crossdoc users reset-password admin"
        )
    if report.admin_password:
        console.print(
            f"[bold]관리자 계정 생성 · created user 'admin' with password:[/bold] "
            f"{report.admin_password}\n(shown once; set CROSSDOC_ADMIN_PASSWORD to choose it)"
        )
    if report.demo_password:
        console.print(
            f"[bold]데모 조직 생성 · demo organisation created.[/bold] Users "
            f"{', '.join(report.demo_users)} share the password: {report.demo_password} "
            "(shown once)"
        )
    console.print(
        f"Crossdoc: http://{host}:{port}/  (웹 화면 · web UI; API docs: /docs; "
        f"data: {settings.data_dir.resolve()})"
    )
    if settings.api_workers > 1:
        # The first users exist and the catalog is migrated: the children only serve.
        services.close()
        _supervise(settings, host, port, console)
        return
    uvicorn.run(create_app(settings, services), **uvicorn_options(host, port))  # type: ignore[arg-type]


def _supervise(settings: Settings, host: str, port: int, console: Console) -> None:
    """`--workers N`: N API processes on one listening socket, and one indexer."""
    import uvicorn

    from crossdoc.supervisor import ChildSpec, Supervisor
    from crossdoc.wiring.indexer_process import run_indexer

    config = uvicorn.Config(app="crossdoc:unused", **uvicorn_options(host, port))  # type: ignore[arg-type]
    sock = config.bind_socket()  # bound here, shared by the children (one accept queue)
    specs = [ChildSpec("api", serve_api_process, (settings, sock), count=settings.api_workers)]
    if not settings.broker_url:
        # The embedded task queue: exactly one process drains the outbox and
        # writes the index (Tantivy takes one writer); with a broker,
        # `crossdoc worker` processes do.
        specs.append(ChildSpec("indexer", run_indexer, (settings,)))
    console.print(
        f"{settings.api_workers} API processes"
        + ("" if settings.broker_url else " and 1 indexing process")
        + " · API 프로세스 (SIGTERM/Ctrl+C to stop)"
    )
    try:
        Supervisor(specs).run()
    finally:
        sock.close()


def serve_api_process(settings: Settings, sock: socket.socket) -> None:
    """One API process of `--workers N` (a spawned child): serve on the shared socket.

    It indexes nothing: its dispatcher wakes the indexing process (or publishes
    Celery tasks with a broker). uvicorn stops it gracefully on SIGTERM.
    """
    import uvicorn

    services = build_services(settings, indexer=False)
    app = create_app(settings, services)
    options = uvicorn_options("127.0.0.1", 0)
    del options["host"], options["port"]
    server = uvicorn.Server(uvicorn.Config(app, **options))  # type: ignore[arg-type]
    server.run(sockets=[sock])
