"""``freshrank serve api|classifier``: the search API with the workbench page, and the KServe model server."""

from __future__ import annotations

import typer

from freshrank.config import cli_settings

serve_app = typer.Typer(
    help="Run freshrank's servers (search API + workbench, KServe classifier).", no_args_is_help=True
)


@serve_app.command("api")
def serve_api(
    host: str = typer.Option(None, help="Bind address (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default from settings: 8000)."),
    workers: int = typer.Option(
        None, min=1, help="Server processes (default from settings serve.workers: one per usable core)."
    ),
) -> None:
    """Search API, Prometheus /metrics and the relevance workbench page."""
    from freshrank.serve.api import run

    settings = cli_settings()
    run(settings, host or settings.serve.host, port or settings.serve.port, workers)


@serve_app.command("classifier")
def serve_classifier(
    host: str = typer.Option(None, help="Bind address (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, help="HTTP port (default from settings: 8080)."),
) -> None:
    """KServe model server ``zero-shot-classifier`` (V1 and V2 protocols) for the champion model."""
    from freshrank.serve.kserve_server import run

    settings = cli_settings()
    run(settings, host or settings.serve.host, port or settings.serve.classifier_port)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
