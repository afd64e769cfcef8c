"""How a search page is shown: the ``--json`` document and the terminal table (CLI and demo)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from freshrank.search.base import SearchPage


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


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
