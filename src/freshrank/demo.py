"""``freshrank demo``: the whole freshness loop on one machine, as in the talk.

Load the catalogue, replay a tweet stream with a ``#christmas`` burst injected at a known time, show the
trends as they change, refresh the scores, compare the top 10 "Family" movies before and after the burst,
and evaluate on the shared judgments. A rerun reuses the embedding cache and the stored scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from freshrank.catalog.loader import load_catalog
from freshrank.classify.registry import EMBEDDING
from freshrank.config import Settings, cli_settings
from freshrank.console import err, out, print_json, progress
from freshrank.loop.commands import open_loop
from freshrank.loop.scores import RefreshReport
from freshrank.loop.service import ScoringLoop
from freshrank.search.base import SearchPage
from freshrank.search.views import page_table, page_to_json
from freshrank.trends.base import Trend
from freshrank.trends.engine import Post, TrendEngine
from freshrank.trends.simulate import Scenario, load_texts

BURST_TAG = "christmas"
GENRE = "Family"
SNAPSHOT_EVERY_SECONDS = 900  # one row of "trends as they change" per 15 simulated minutes
SHOWN_TRENDS = 5
PROGRESS_EVERY = 500  # posts between progress-bar updates (updating per post costs more than counting)


def demo_command(
    data_dir: Path = typer.Option(None, "--data-dir", help="Shared data (movies, tweets, judgments)."),
    movies_limit: int = typer.Option(None, "--movies-limit", min=1, help="Only the first N movies (tests)."),
    tweets_limit: int = typer.Option(None, "--tweets-limit", min=1, help="Sample the stream from N tweets."),
    background_rate: float = typer.Option(
        5.0, "--background-rate", min=0.01, help="Background posts per simulated second (2 h stream)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Run the loop end to end: catalogue → trends (with a #christmas burst) → refresh → search → evaluate."""
    settings = cli_settings()
    if data_dir:
        settings.data_dir = data_dir
    settings.ensure_state_dir()
    loop = open_loop(settings)
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}
    say = err.print if as_json else out.print

    with _timed(timings, "load"):
        result["catalog"] = _load(loop, settings, movies_limit)
    say(f"[bold]1. catalogue[/]: {result['catalog']['indexed']} movies indexed")

    scenario = Scenario(burst_tag=BURST_TAG, background_rate=background_rate)
    texts = load_texts(settings.tweets_path, tweets_limit)
    engine = TrendEngine(settings.trends)
    posts = scenario.posts(texts)
    burst_at = scenario.burst_at
    with _timed(timings, "replay_before"):
        before_rows = _replay(engine, posts, until=burst_at, label="replaying tweets (before the burst)")
    before = engine.top()
    with _timed(timings, "refresh_before"):
        refresh_before = _publish_and_refresh(loop, settings, before)
    family_before = loop.search(text="", genre=GENRE, hashtags=None, limit=10)

    with _timed(timings, "replay_burst"):
        after_rows = _replay(engine, posts, until=None, label=f"replaying tweets (#{BURST_TAG} burst)")
    engine.finish()
    after = engine.top()
    with _timed(timings, "refresh_after"):
        refresh_after = _publish_and_refresh(loop, settings, after)
    family_after = loop.search(text="", genre=GENRE, hashtags=None, limit=10)

    rows = before_rows + after_rows
    result["trends"] = {
        "burst_at": burst_at.isoformat(),
        "timeline": rows,
        "before": [t.to_dict() for t in before],
        "after": [t.to_dict() for t in after],
    }
    result["refresh"] = {"before": refresh_before.to_dict(), "after": refresh_after.to_dict()}
    result["family_before"] = page_to_json(family_before)["results"]
    result["family_after"] = page_to_json(family_after)["results"]
    if not as_json:
        _show_trends(rows, burst_at)
        _show_refresh("before the burst", refresh_before)
        _show_refresh(f"after #{BURST_TAG} trends", refresh_after)
        out.print(page_table(family_before, f"{GENRE} movies before #{BURST_TAG} trends", columns=1))
        out.print(page_table(family_after, f"{GENRE} movies while #{BURST_TAG} trends", columns=1))
        _show_rise(family_before, family_after)

    with _timed(timings, "evaluate"):
        result["evaluation"] = _evaluate(loop, settings, show=not as_json)
    result["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    if as_json:
        print_json(result)
    else:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        out.print(f"done in {sum(timings.values()):.1f} s: {steps}")


class _timed:
    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.into[self.name] = time.perf_counter() - self.started


def _load(loop: ScoringLoop, settings: Settings, limit: int | None) -> dict[str, Any]:
    with err.status(f"loading {settings.movies_path}"):
        catalog = load_catalog(settings.movies_path)
        movies = catalog.movies[:limit] if limit else catalog.movies
        indexed = loop.backend.index(movies)
    extra = loop.backend.count() - indexed
    if extra:
        err.print(f"[yellow]warning:[/] the index also holds {extra} other movies")
    return {
        "path": str(settings.movies_path),
        "indexed": indexed,
        "errors": len(catalog.errors),
        "duplicate_ids": len(catalog.duplicate_ids),
    }


def _replay(
    engine: TrendEngine, posts: Iterator[Post], until: datetime | None, label: str
) -> list[dict[str, Any]]:
    """Feed posts (up to ``until``) and take a top-trends row every few simulated minutes."""
    rows: list[dict[str, Any]] = []
    next_snapshot: datetime | None = None
    with progress() as bar:
        task = bar.add_task(label, total=None)
        for seen, post in enumerate(posts, start=1):
            engine.add(post)
            if seen % PROGRESS_EVERY == 0:
                bar.update(task, completed=seen)
            tick = engine.tick
            if tick is None:
                continue
            if next_snapshot is None or tick >= next_snapshot:
                rows.append(_snapshot(engine, tick))
                next_snapshot = tick + timedelta(seconds=SNAPSHOT_EVERY_SECONDS)
            if until is not None and isinstance(post.created_at, datetime) and post.created_at >= until:
                break
    if engine.tick is not None:
        rows.append(_snapshot(engine, engine.tick))
    return rows


def _snapshot(engine: TrendEngine, tick: datetime) -> dict[str, Any]:
    top = [[t.hashtag, round(t.score, 1), t.count] for t in engine.top(SHOWN_TRENDS)]
    return {"time": tick.isoformat(), "top": top}


def _publish_and_refresh(loop: ScoringLoop, settings: Settings, trends: list[Trend]) -> RefreshReport:
    from freshrank.trends import open_trend_store

    store = open_trend_store(settings.resolved_trend_store_url, ttl_seconds=settings.trends.ttl_seconds)
    try:
        store.replace(trends)
    finally:
        store.close()
    with progress() as bar:
        task = bar.add_task("refresh: scoring new trending labels", total=None)
        report = loop.refresh(progress=lambda done, total: bar.update(task, completed=done, total=total))
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    return report


def _show_trends(rows: list[dict[str, Any]], burst_at: datetime) -> None:
    table = Table(
        title=f"trends as they change (burst of #{BURST_TAG} injected at {burst_at:%H:%M} UTC)",
        title_justify="left",
    )
    table.add_column("window end (UTC)")
    table.add_column(f"top {SHOWN_TRENDS}: hashtag burst-score/count")
    for row in rows:
        when = datetime.fromisoformat(row["time"])
        cells = "  ".join(f"{escape(tag)} {score}/{count}" for tag, score, count in row["top"]) or "—"
        table.add_row(f"{when:%H:%M:%S}", cells)
    out.print(table)


def _show_refresh(when: str, report: RefreshReport) -> None:
    out.print(
        f"[bold]refresh {when}[/]: {len(report.trending)} trending labels, {len(report.scored)} newly scored "
        f"({report.pairs} pairs in {report.seconds:.1f} s), {len(report.already_scored)} already scored"
    )


def _show_rise(before: SearchPage, after: SearchPage) -> None:
    old = {hit.id for hit in before.hits}
    risen = [hit.title for hit in after.hits if hit.id not in old]
    out.print(f"new in the {GENRE} top {len(after.hits)}: " + (escape(", ".join(risen)) if risen else "none"))


def _evaluate(loop: ScoringLoop, settings: Settings, show: bool) -> dict[str, Any]:
    from freshrank.evaluate.io import read_csv
    from freshrank.evaluate.runner import evaluate_judgments

    files = sorted(settings.judgments_dir.glob("*.csv"))
    judgments = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            judgments.extend(read_csv(fh).judgments)
    if not judgments:
        err.print(f"[yellow]warning:[/] no judgments under {settings.judgments_dir}; evaluation skipped")
        return {}
    classifier = loop.classifier()
    groups = len({j.query_id for j in judgments})
    version = loop.version([])
    compare_embedding = not version.startswith(EMBEDDING)
    with progress() as bar:
        task = bar.add_task("evaluating (boosted + baselines)", total=(2 + compare_embedding) * groups)
        report = evaluate_judgments(
            loop,
            judgments,
            classifier=classifier.name if classifier else "",
            model_version=version,
            catalog_size=loop.backend.count(),
            on_query=lambda _qid: bar.advance(task),
        )
        doc = report.to_json()
        if compare_embedding:
            doc["embedding"] = _embedding_figures(settings, loop, judgments, lambda _q: bar.advance(task))
    if show:
        _show_evaluation(doc)
    return doc


def _embedding_figures(
    settings: Settings, loop: ScoringLoop, judgments: list[Any], on_query: Callable[[str], None]
) -> dict[str, Any]:
    """The same judged groups boosted by the untrained embedding classifier: the champion's other baseline."""
    from freshrank.evaluate.metrics import MetricParams
    from freshrank.evaluate.systems import evaluate_system, open_system

    system = open_system(settings, loop.backend, EMBEDDING)
    result = evaluate_system(system, judgments, MetricParams(), on_query)
    return {"mean": result.mean, "per_query": result.per_query}


def _show_evaluation(doc: dict[str, Any]) -> None:
    """Boosted search vs the BM25 baseline per judged group and on the mean, under the champion's version."""
    model = doc.get("model_version") or doc["classifier"]
    embedding = doc.get("embedding")
    table = Table(
        title=f"evaluation on the shared judgments (champion {model}; baseline: BM25, no boost"
        + ("; embedding: the untrained classifier's boost)" if embedding else ")"),
        title_justify="left",
    )
    columns = ["trend | genre", "nDCG@10", "baseline", "lift"] + (["embedding"] if embedding else [])
    columns += ["P@10", "baseline", "recall@100", "baseline"]
    for column in columns:
        table.add_column(column, justify="left" if column.startswith("trend") else "right")
    rows = [*doc["per_query"].items(), ("mean", doc["mean"])]
    for qid, figures in rows:
        other = _figures(doc.get("baseline"), qid)
        cells = []
        for metric in ("ndcg@10", "p@10", "recall@100"):
            cells += [f"{figures.get(metric, 0.0):.3f}", f"{other.get(metric, 0.0):.3f}"]
            if metric == "ndcg@10":
                cells.append(_lift(figures.get(metric, 0.0), other.get(metric)))
                if embedding:
                    cells.append(f"{_figures(embedding, qid).get(metric, 0.0):.3f}")
        table.add_row(escape(qid), *cells, style="bold" if qid == "mean" else None)
    out.print(table)


def _figures(system: dict[str, Any] | None, qid: str) -> dict[str, float]:
    """One row's figures of a system in the report (its mean for the row ``mean``)."""
    if not system:
        return {}
    return dict(system.get("mean", {}) if qid == "mean" else system.get("per_query", {}).get(qid, {}))


def _lift(boosted: float, baseline: float | None) -> str:
    """Absolute change, and relative when the baseline is not zero."""
    if baseline is None:
        return "-"
    delta = boosted - baseline
    return f"{delta:+.3f} ({delta / baseline:+.0%})" if baseline > 0 else f"{delta:+.3f}"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
