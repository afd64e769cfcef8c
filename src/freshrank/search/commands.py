"""``freshrank search`` and ``freshrank refresh``: trend-boosted ranking and scoring new trends."""

from __future__ import annotations

import logging
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from freshrank.config import Settings
from freshrank.console import err, out, print_json, progress
from freshrank.exitcodes import EXIT_ERROR, EXIT_UNAVAILABLE
from freshrank.search.base import SearchPage
from freshrank.search.refresh import RefreshReport
from freshrank.search.service import SearchService

log = logging.getLogger(__name__)


def open_service(settings: Settings | None = None) -> SearchService:
    """The service for a command, or exit 3 with one clear line when the search backend is unreachable."""
    settings = settings or Settings()
    try:
        return SearchService.from_settings(settings)
    except Exception as exc:  # bad URL, database or server that cannot be opened
        log.debug("cannot open search backend", exc_info=True)
        err.print(f"[red]error:[/] search backend unavailable: {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc


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
    service = open_service()
    page = service.search(text=text, genre=genre, hashtags=hashtags, limit=limit, offset=offset)
    for warning in page.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(page_to_json(page))
    else:
        out.print(page_table(page, f"search {text!r}" if text else "search", offset))


def page_to_json(page: SearchPage) -> dict[str, Any]:
    """The ``--json`` shape of issue 2 item 8 (plus the total and any degraded-mode warnings)."""
    return {
        "results": [
            {
                "id": h.id,
                "title": h.title,
                "text_score": h.text_score,
                "trend_scores": h.trend_scores,
                "score": h.score,
            }
            for h in page.hits
        ],
        "total": page.total,
        "warnings": page.warnings,
    }


def page_table(page: SearchPage, title: str = "", offset: int = 0, columns: int = 4) -> Table:
    """Rank, movie, text score, the ``columns`` most telling labels, the other labels' sum, score."""
    labels = list(page.hits[0].trend_scores) if page.hits else []
    shown = sorted(labels, key=lambda label: -_spread(page, label))[:columns]
    others = [label for label in labels if label not in shown]
    table = Table(title=escape(f"{title or 'results'} ({page.total} matching)"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("id", justify="right")
    table.add_column("title")
    table.add_column("text", justify="right")
    for label in shown:
        table.add_column(escape(_short(label, 20)), justify="right")
    if others:
        table.add_column(f"{len(others)} other trends", justify="right")
    table.add_column("score", justify="right", style="bold")
    for rank, hit in enumerate(page.hits, start=offset + 1):
        year = f" ({hit.release_year})" if hit.release_year else ""
        rest = [f"{sum(hit.trend_scores.get(label, 0.0) for label in others):.3f}"] if others else []
        table.add_row(
            str(rank),
            str(hit.id),
            escape(hit.title + year),
            f"{hit.text_score:.3f}",
            *(f"{hit.trend_scores.get(label, 0.0):.3f}" for label in shown),
            *rest,
            f"{hit.score:.3f}",
        )
    return table


def _spread(page: SearchPage, label: str) -> float:
    values = [hit.trend_scores.get(label, 0.0) for hit in page.hits]
    return max(values) - min(values) + max(values) / 1000  # most discriminating first; ties: highest


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
    settings = Settings()
    if classifier_url:
        settings.classifier.url = classifier_url
    service = open_service(settings)
    with progress() as bar:
        task = bar.add_task("scoring new labels", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = service.refresh(list(trend) if trend else None, progress=advance)
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
    app.command("search")(search_command)
    app.command("refresh")(refresh_command)
