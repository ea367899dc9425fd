"""Running the API process: `crossdoc serve` builds its root and hands it to uvicorn."""

from __future__ import annotations

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

    Raises `crossdoc.wiring.core.ConfigurationError` before serving on bad settings.
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
    uvicorn.run(create_app(settings, services), **uvicorn_options(host, port))  # type: ignore[arg-type]
