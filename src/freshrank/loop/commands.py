"""``freshrank load``, ``freshrank refresh`` and ``freshrank search``: the commands that may write.

``load`` indexes a catalogue, ``refresh`` scores the current trends; ``search`` ranks through the read-only
search service after scoring (storing) any label the current model lacks, as a command-line user may.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.markup import escape

from freshrank.catalog.loader import CatalogFileError
from freshrank.config import Settings, cli_settings
from freshrank.console import err, out, print_json, progress
from freshrank.exitcodes import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE
from freshrank.loop.scores import RefreshReport
from freshrank.loop.service import ScoringLoop
from freshrank.search.views import page_table, page_to_json

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20


def open_loop(settings: Settings | None = None) -> ScoringLoop:
    """The loop for a command, or exit 3 with one clear line when the search backend is unreachable."""
    settings = settings or cli_settings()
    try:
        return ScoringLoop.from_settings(settings)
    except Exception as exc:  # bad URL, database or server that cannot be opened
        log.debug("cannot open search backend", exc_info=True)
        err.print(f"[red]error:[/] search backend unavailable: {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc


def load_command(
    input_file: Path = typer.Option(
        None, "--input", "-i", help="Catalogue .jsonl/.csv, maybe .gz (default DATA_DIR/movies.jsonl.gz)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Load movies into the search index; bad rows are reported with their line number and skipped.

    Exit code 1 when the file held no valid movie, 2 when it cannot be read.
    """
    settings = cli_settings()
    loop = open_loop(settings)
    path = input_file or settings.movies_path
    with err.status(f"loading {escape(str(path))}"):
        try:
            report = loop.load(path)
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


def search_command(
    text: str = typer.Argument("", help="Words to search for (plain words, no query syntax)."),
    genre: str = typer.Option(None, "--genre", "-g", help="Only movies of this genre, e.g. Family."),
    trend: list[str] = typer.Option(
        None, "--trend", "-t", help="Boost by this hashtag (repeatable). Default: the current trends."
    ),
    no_trends: bool = typer.Option(False, "--no-trends", help="No trend boost: text relevance only."),
    limit: int = typer.Option(10, "--limit", "-n", min=0, max=10_000, help="How many results."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many results (paging)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Rank movies by text relevance plus the trend boost, showing why each one ranks where it does.

    Example: freshrank search "santa" --genre Family --trend '#christmas'
    """
    hashtags: list[str] | None = [] if no_trends else (list(trend) if trend else None)
    loop = open_loop()
    page = loop.search(text=text, genre=genre, hashtags=hashtags, limit=limit, offset=offset)
    for warning in page.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(page_to_json(page))
    else:
        out.print(page_table(page, f"search {text!r}" if text else "search", offset))


def refresh_command(
    classifier_url: str = typer.Option(
        None, "--classifier-url", help="Score on this KServe server instead of in-process (http://host:port)."
    ),
    trend: list[str] = typer.Option(None, "--trend", "-t", help="Score these hashtags, not the trends."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Score every (movie, label) pair of the current trends that the current model has not scored yet.

    A second refresh with the same trends and model does nothing. Exit code 3 when the trend store or the
    classifier was unavailable.
    """
    settings = cli_settings()
    if classifier_url:
        settings.classifier.url = classifier_url
    loop = open_loop(settings)
    with progress() as bar:
        task = bar.add_task("scoring new labels", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = loop.refresh(list(trend) if trend else None, progress=advance)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(report.to_dict())
    else:
        print_refresh(report)
    if report.failed or any("unavailable" in w for w in report.warnings):
        raise typer.Exit(EXIT_UNAVAILABLE if not report.scored else EXIT_ERROR)


def print_refresh(report: RefreshReport) -> None:
    out.print(
        f"model [bold]{escape(report.model_version or '?')}[/]: {len(report.trending)} trending labels, "
        f"{len(report.scored)} newly scored ({report.pairs} pairs, {report.pairs_per_second:,.0f} pairs/s), "
        f"{len(report.already_scored)} already scored, {len(report.failed)} failed, {report.seconds:.1f} s"
    )
    for label, why in report.failed.items():
        out.print(f"  [red]failed[/] {escape(_short(label))}: {escape(why)}")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("load")(load_command)
    app.command("search")(search_command)
    app.command("refresh")(refresh_command)
