"""``freshrank load``: validate a catalogue file and index its good rows into the search backend."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from freshrank.catalog.loader import CatalogFileError
from freshrank.config import Settings
from freshrank.console import err, out, print_json
from freshrank.exitcodes import EXIT_ERROR, EXIT_USAGE

MAX_ERRORS_SHOWN = 20


def load_command(
    input_file: Path = typer.Option(
        None, "--input", "-i", help="Catalogue .jsonl/.csv, maybe .gz (default DATA_DIR/movies.jsonl.gz)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Load movies into the search index; bad rows are reported with their line number and skipped.

    Exit code 1 when the file held no valid movie, 2 when it cannot be read.
    """
    from freshrank.search.commands import open_service

    settings = Settings()
    service = open_service(settings)
    path = input_file or settings.movies_path
    with err.status(f"loading {escape(str(path))}"):
        try:
            report = service.load(path)
        except CatalogFileError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
    catalog = report.catalog
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(
            f"indexed [bold]{report.indexed}[/] movies from {escape(str(path))} "
            f"({len(catalog.errors)} bad rows, {len(catalog.duplicate_ids)} duplicate ids; "
            f"{report.total} in the index)"
        )
    for error in catalog.errors[:MAX_ERRORS_SHOWN]:
        err.print(f"[yellow]skipped[/] {escape(str(error))}")
    if len(catalog.errors) > MAX_ERRORS_SHOWN:
        err.print(f"[yellow]… and {len(catalog.errors) - MAX_ERRORS_SHOWN} more bad rows[/]")
    if catalog.duplicate_ids:
        err.print(f"[yellow]duplicate ids (first kept):[/] {catalog.duplicate_ids[:MAX_ERRORS_SHOWN]}")
    if not catalog.movies:
        raise typer.Exit(EXIT_ERROR)


def register(app: typer.Typer) -> None:
    app.command("load")(load_command)
