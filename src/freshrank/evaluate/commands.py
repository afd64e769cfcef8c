"""``freshrank evaluate``, ``compare``, ``report`` and ``judgments import|export|list|history``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from freshrank.config import Settings, cli_settings
from freshrank.console import err, out, print_json, progress
from freshrank.evaluate.base import ConflictError, EvaluationRun, Judgment, QueryId
from freshrank.evaluate.io import FORMATS, Format, read_judgments, write_judgments
from freshrank.evaluate.metrics import Gain, MetricParams
from freshrank.evaluate.runner import DEFAULT_MIN_JUDGED, EvaluationReport
from freshrank.evaluate.store import SqlJudgmentStore, StoreUnavailable, open_judgment_store, safe_url
from freshrank.exitcodes import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE
from freshrank.trends.base import Trend

log = logging.getLogger(__name__)
judgments_app = typer.Typer(
    help="Import, export and inspect relevance judgments (with their change history)."
)

JSON_OPTION = typer.Option(False, "--json", help="One JSON document on stdout (logs on stderr).")


def _store(settings: Settings) -> SqlJudgmentStore:
    try:
        return open_judgment_store(settings.resolved_judgments_url, limits=settings.judgments_store)
    except StoreUnavailable as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc


def _read_file(path: Path, fmt: str | None) -> list[Judgment]:
    try:
        parsed = read_judgments(path, _format(fmt) if fmt else None)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    for message in parsed.errors[:20]:
        err.print(f"[yellow]skipped[/] {escape(path.name)} {escape(message)}")
    if len(parsed.errors) > 20:
        err.print(f"[yellow]… and {len(parsed.errors) - 20} more bad lines[/]")
    if parsed.duplicates:
        err.print(
            f"[yellow]warning:[/] {parsed.duplicates} repeated judgment(s) in {escape(path.name)}: last wins"
        )
    if not parsed.judgments:
        err.print(f"[red]error:[/] no valid judgments in {escape(str(path))}")
        raise typer.Exit(EXIT_USAGE)
    return parsed.judgments


def _format(fmt: str) -> Format:
    if fmt not in FORMATS:
        err.print(f"[red]error:[/] unknown format {escape(fmt)!r}: use one of {', '.join(FORMATS)}")
        raise typer.Exit(EXIT_USAGE)
    return fmt  # type: ignore[return-value]


def load_judgments(settings: Settings, path: Path | None, from_store: bool) -> list[Judgment]:
    """Judgments from a file, or from the judgments store with ``--from-store``."""
    if path is not None and from_store:
        err.print("[red]error:[/] give either --judgments FILE or --from-store, not both")
        raise typer.Exit(EXIT_USAGE)
    if path is not None:
        return _read_file(path, None)
    if not from_store:
        err.print("[red]error:[/] --judgments FILE or --from-store is required")
        raise typer.Exit(EXIT_USAGE)
    store = _store(settings)
    judgments = store.judgments()
    store.close()
    if not judgments:
        err.print(
            f"[red]error:[/] the judgments store {escape(safe_url(settings.resolved_judgments_url))} is empty"
        )
        raise typer.Exit(EXIT_USAGE)
    return judgments


def _params(k: int, recall_k: int, gain: str, threshold: int) -> MetricParams:
    if gain not in ("exponential", "linear"):
        err.print(f"[red]error:[/] --gain must be exponential or linear, not {escape(gain)!r}")
        raise typer.Exit(EXIT_USAGE)
    g: Gain = "exponential" if gain == "exponential" else "linear"
    return MetricParams(k=k, recall_k=recall_k, gain=g, threshold=threshold)


def _open_backend(settings: Settings) -> Any:
    from freshrank.loop.commands import open_loop

    backend = open_loop(settings).backend
    if backend.count() == 0:
        err.print("[red]error:[/] the search index is empty: run `freshrank load` first")
        raise typer.Exit(EXIT_ERROR)
    return backend


def _open_system(settings: Settings, backend: Any, spec: str) -> Any:
    from freshrank.evaluate.systems import open_system

    try:
        return open_system(settings, backend, spec)
    except Exception as exc:  # registry errors, missing model files, a KServe server that is down
        log.debug("cannot open system %s", spec, exc_info=True)
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc


def _record(settings: Settings, run: EvaluationRun) -> int | None:
    """Store the run in the history; a store that is down costs the history entry, not the result."""
    try:
        store = open_judgment_store(settings.resolved_judgments_url, limits=settings.judgments_store)
        try:
            return store.record_run(run)
        finally:
            store.close()
    except Exception as exc:  # StoreUnavailable or a database error: warn, keep the printed result
        err.print(f"[yellow]warning:[/] evaluation run not stored in history: {escape(str(exc))}")
        return None


def _publish_gauges(report: EvaluationReport) -> None:
    from freshrank.metrics import EVALUATION_MEAN, NDCG_AT_10

    key = f"ndcg@{report.params.k}"
    for system in (report.system, report.baseline):
        if system is None:
            continue
        name = "baseline" if system is report.baseline else "classifier"
        for qid, figures in system.per_query.items():
            query = QueryId.parse(qid)
            NDCG_AT_10.labels(trend=query.trend, genre=query.genre, system=name).set(figures.get(key, 0.0))
        for metric, value in system.mean.items():
            EVALUATION_MEAN.labels(metric=metric, system=name).set(value)


# evaluate ---------------------------------------------------------------------------------------------


def evaluate_command(
    judgments: Path = typer.Option(
        None, "--judgments", "-j", help="Judgments CSV (trend,genre,doc_id,grade)."
    ),
    from_store: bool = typer.Option(False, "--from-store", help="Use the judgments in the judgments store."),
    classifier: str = typer.Option(None, "--classifier", "-c", help="embedding | champion | a version id."),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="Cut-off of nDCG and P."),
    recall_k: int = typer.Option(100, "--recall-k", min=1, max=1000, help="Cut-off of recall and AP."),
    gain: str = typer.Option("exponential", "--gain", help="exponential (2^g-1) or linear (g)."),
    threshold: int = typer.Option(1, "--threshold", help="Grade at which a movie counts as relevant."),
    min_judged: float = typer.Option(
        DEFAULT_MIN_JUDGED, "--min-judged", help="Warn below this judged@k share."
    ),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Skip the lexical baseline."),
    no_record: bool = typer.Option(False, "--no-record", help="Do not store the run in the history."),
    crowd: str = typer.Option(
        None,
        "--crowd",
        help="STREAM.jsonl (as `trends replay` reads) or 'demo' (the demo's stream): also rank each group "
        "in the crowd of that stream's trends.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """nDCG@10, P@10 and recall@100 of trend-boosted search per judged (trend, genre), with the lift over the
    lexical baseline.

    Each group ranks the catalogue (filtered by its genre) with no text and only its trend trending
    (isolated). With --crowd STREAM, also with its trend injected, as the strongest, into the trends a replay
    of STREAM produces (the others boost too, weighted by strength): both figures are reported and stored.

    The baseline is BM25 on the hashtag's words, no classifier. Unjudged movies count as grade 0.

    Every run is stored in the history (see `freshrank report`). Exit 3: classifier or store unavailable.

    Example: freshrank evaluate --judgments ../shared/data/judgments/keyword_judgments.csv --json
    """
    settings = cli_settings()
    params = _params(k, recall_k, gain, threshold)
    items = load_judgments(settings, judgments, from_store)
    backend = _open_backend(settings)
    system = _open_system(settings, backend, classifier or settings.classifier.name)
    trends = _crowd(settings, crowd) if crowd is not None else None
    report = _run_evaluation(system, items, params, min_judged, baseline=not no_baseline, crowd=trends)
    trending = _trend_snapshot(system)
    run = report.to_run()
    run.details["source"] = str(judgments) if judgments else "store"
    run.details["trend_snapshot"] = trending
    if crowd is not None:
        run.details["crowd_source"] = crowd
    stored = None if no_record else _record(settings, run)
    report.run_id = stored
    _publish_gauges(report)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(report.to_json())
    else:
        print_report(report)
    if not no_record and stored is None:
        raise typer.Exit(EXIT_UNAVAILABLE)


def _trend_snapshot(system: Any) -> list[str]:
    """The labels trending while the run happened (recorded with it); empty when the store is unreachable."""
    try:
        return list(system.reader.current_labels([]))
    except Exception:  # a trend store that cannot be opened: the run is still worth keeping
        log.debug("no trend snapshot", exc_info=True)
        return []


def _crowd(settings: Settings, spec: str) -> list[Trend]:
    """The trends a replay of ``spec`` ends with (exit 2 when it cannot be read)."""
    from freshrank.evaluate.crowd import open_crowd

    try:
        trends = open_crowd(settings, spec) or []
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read the crowd stream: {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    if not trends:
        err.print(f"[yellow]warning:[/] nothing trends at the end of {escape(spec)}: the crowd is empty")
    return trends


def _run_evaluation(
    system: Any,
    judgments: Sequence[Judgment],
    params: MetricParams,
    min_judged: float,
    baseline: bool,
    crowd: list[Trend] | None = None,
) -> EvaluationReport:
    from freshrank.evaluate.systems import evaluate_with_baseline

    runs = 1 + int(baseline) + int(crowd is not None)
    queries = len({(j.trend, j.genre) for j in judgments}) * runs
    with progress() as bar:
        task = bar.add_task("ranking judged queries", total=queries)
        return evaluate_with_baseline(
            system,
            judgments,
            params,
            min_judged,
            on_query=lambda _: bar.advance(task),
            baseline=baseline,
            crowd=crowd,
        )


def print_report(report: EvaluationReport) -> None:
    k, r = report.params.k, report.params.recall_k
    names = [f"ndcg@{k}", f"p@{k}", f"recall@{r}", f"judged@{k}"]
    title = f"{report.classifier} ({report.model_version}) on {report.catalog_size:,} movies"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("trend | genre", overflow="fold")
    for name in names:
        table.add_column(name, justify="right")
    if report.baseline:
        table.add_column(f"baseline ndcg@{k}", justify="right", style="dim")
    for qid, figures in report.system.per_query.items():
        base = [f"{report.baseline.per_query[qid][f'ndcg@{k}']:.3f}"] if report.baseline else []
        table.add_row(escape(qid), *(f"{figures[n]:.3f}" for n in names), *base)
    mean = report.system.mean
    base_mean = [f"{report.baseline.mean[f'ndcg@{k}']:.3f}"] if report.baseline else []
    table.add_row("[bold]mean[/]", *(f"[bold]{mean[n]:.3f}[/]" for n in names), *base_mean, end_section=True)
    out.print(table)
    doc = report.to_json()
    if report.crowd is not None:
        key = f"ndcg@{k}"
        out.print(
            f"in the crowd of {len(report.crowd_trends)} replayed trends: {key} {report.crowd.mean[key]:.3f} "
            f"(isolated {mean[key]:.3f})"
        )
    if "significance" in doc:
        sig = doc["significance"]
        out.print(
            f"lift over the lexical baseline: nDCG@{k} {doc['lift'][f'ndcg@{k}']:+.3f} "
            f"(paired t-test p={_p(sig['t_test_p'])}, randomization p={_p(sig['randomization_p'])}, "
            f"{sig['n']} queries)"
        )


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# compare ----------------------------------------------------------------------------------------------


def compare_command(
    a: str = typer.Argument(..., help="First system: baseline | embedding | champion | a model version id."),
    b: str = typer.Argument(..., help="Second system (deltas are b - a)."),
    judgments: Path = typer.Option(
        None, "--judgments", "-j", help="Judgments CSV (trend,genre,doc_id,grade)."
    ),
    from_store: bool = typer.Option(False, "--from-store", help="Use the judgments in the judgments store."),
    metric: str = typer.Option("ndcg@10", "--metric", "-m", help="Metric of the per-query deltas and tests."),
    min_judged: float = typer.Option(
        DEFAULT_MIN_JUDGED, "--min-judged", help="Warn below this judged@10 share."
    ),
    resamples: int = typer.Option(10_000, "--resamples", min=100, help="Randomization test resamples."),
    no_record: bool = typer.Option(False, "--no-record", help="Do not store the comparison in the history."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare two configurations on the same judgments: per-query deltas and paired significance tests.

    Reports a paired t-test and a randomization test (p-values); warns where a top 10 is barely judged.

    Example: freshrank compare baseline embedding --judgments keyword_judgments.csv
    """
    from freshrank.evaluate.compare import compare_systems
    from freshrank.evaluate.runner import judged_warnings
    from freshrank.evaluate.systems import evaluate_system

    settings = cli_settings()
    params = MetricParams()
    items = load_judgments(settings, judgments, from_store)
    backend = _open_backend(settings)
    systems = [_open_system(settings, backend, spec) for spec in (a, b)]
    queries = len({(j.trend, j.genre) for j in items})
    with progress() as bar:
        task = bar.add_task("ranking judged queries", total=2 * queries)
        results = [evaluate_system(s, items, params, on_query=lambda _: bar.advance(task)) for s in systems]
    if results[0].name == results[1].name:
        results[1].name += " (b)"
    try:
        comparison = compare_systems(results[0], results[1], metric, resamples)
    except ValueError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    comparison.warnings = [w for r in results for w in judged_warnings(r, params.k, min_judged)]
    doc = comparison.to_json()
    doc["catalog_size"] = backend.count()
    doc["systems"] = {"a": a, "b": b}
    run = EvaluationRun(
        kind="compare", classifier=f"{a} vs {b}",
        model_version=systems[1].model_version or systems[0].model_version,
        catalog_size=doc["catalog_size"], params={"metric": metric, **params.__dict__},
        trends=sorted({j.trend for j in items}), mean=comparison.mean_b, baseline_mean=comparison.mean_a,
        per_query=results[1].per_query, details={**doc, "per_query_a": results[0].per_query},
    )  # fmt: skip
    doc["run_id"] = None if no_record else _record(settings, run)
    for warning in comparison.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(doc)
        return
    table = Table(title=escape(f"{metric}: {comparison.b} - {comparison.a}"), title_justify="left")
    for column in ("trend | genre", comparison.a, comparison.b, "delta"):
        table.add_column(escape(column), justify="left" if column == "trend | genre" else "right")
    for qid, delta in comparison.deltas.items():
        x, y = results[0].per_query[qid][metric], results[1].per_query[qid][metric]
        style = "green" if delta > 0 else "red" if delta < 0 else ""
        table.add_row(escape(qid), f"{x:.3f}", f"{y:.3f}", f"[{style}]{delta:+.3f}[/]" if style else "0")
    table.add_row("[bold]mean[/]", f"{comparison.mean_a[metric]:.3f}", f"{comparison.mean_b[metric]:.3f}",
                  f"[bold]{comparison.mean_b[metric] - comparison.mean_a[metric]:+.3f}[/]")  # fmt: skip
    out.print(table)
    sig = comparison.significance
    out.print(f"paired t-test p={_p(doc['significance']['t_test_p'])}, randomization p="
              f"{_p(doc['significance']['randomization_p'])} over {sig.n} queries")  # fmt: skip


# report -----------------------------------------------------------------------------------------------


def report_command(
    out_dir: Path = typer.Option(
        Path("report"), "--out", "-o", help="Directory for report.png and index.html."
    ),
    last: int = typer.Option(50, "--last", min=1, help="How many evaluation runs to plot."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Render the evaluation history (metrics over time) and the last comparison as a PNG and an HTML page."""
    from freshrank.evaluate.report import write_report

    settings = cli_settings()
    store = _store(settings)
    evaluations = store.runs(kind="evaluate", limit=last)
    comparisons = store.runs(kind="compare", limit=1)
    store.close()
    if not evaluations and not comparisons:
        err.print(
            "[red]error:[/] no evaluation runs stored yet: run `freshrank evaluate` or `freshrank compare`"
        )
        raise typer.Exit(EXIT_ERROR)
    paths = write_report(out_dir, evaluations, comparisons[-1] if comparisons else None)
    if as_json:
        print_json({"png": str(paths.png), "html": str(paths.html), "runs": len(evaluations),
                    "comparison": comparisons[-1].id if comparisons else None})  # fmt: skip
    else:
        out.print(f"wrote {escape(str(paths.html))} and {escape(str(paths.png))} ({len(evaluations)} runs)")


# judgments ------------------------------------------------------------------------------------------


@judgments_app.command("import")
def import_command(
    path: Path = typer.Argument(..., help="File to import."),
    fmt: str = typer.Option(
        None, "--format", "-f", help="csv | qrels | quepid (default: from name and header)."
    ),
    who: str = typer.Option("import", "--who", help="Recorded as the author of the changes."),
    on_conflict: str = typer.Option(
        "update",
        "--on-conflict",
        help="A stored grade differs: update (logged) | keep | fail (write nothing).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add judgments to the judgments store; changed grades are kept in the history with who and when."""
    if on_conflict not in ("update", "keep", "fail"):
        err.print("[red]error:[/] --on-conflict must be update, keep or fail")
        raise typer.Exit(EXIT_USAGE)
    settings = cli_settings()
    items = _read_file(path, fmt)
    store = _store(settings)
    try:
        result = store.add(items, who=who, source=path.name, on_conflict=on_conflict)  # type: ignore[arg-type]
    except ConflictError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from exc
    finally:
        store.close()
    for incoming, old in result.conflicts[:20]:
        verb = "changed" if on_conflict == "update" else "kept"
        err.print(f"[yellow]{verb}[/] {escape(incoming.query_id)} doc {incoming.doc_id}: stored {old}, file "
                  f"{incoming.grade}")  # fmt: skip
    summary = {"added": result.added, "changed": result.changed, "unchanged": result.unchanged,
               "kept": result.kept, "conflicts": len(result.conflicts)}  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        out.print(", ".join(f"{v} {k}" for k, v in summary.items()))


@judgments_app.command("export")
def export_command(
    fmt: str = typer.Option("csv", "--format", "-f", help="csv | qrels | quepid."),
    out_path: Path = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
    trend: str = typer.Option(None, "--trend", help="Only this trend."),
    genre: str = typer.Option(None, "--genre", help="Only this genre ('' = no genre)."),
) -> None:
    """Write the stored judgments as the shared CSV, TREC qrels or a Quepid ratings CSV."""
    format_ = _format(fmt)
    settings = cli_settings()
    store = _store(settings)
    items = store.judgments(trend=trend, genre=genre)
    store.close()
    if out_path is None:
        write_judgments(items, sys.stdout, format_)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        count = write_judgments(items, fh, format_)
    tmp.replace(out_path)
    err.print(f"wrote {count} judgments to {escape(str(out_path))}")


@judgments_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """Judged queries: how many movies each has, how many are relevant, the grades used."""
    settings = cli_settings()
    store = _store(settings)
    items = store.judgments()
    store.close()
    groups: dict[str, dict[str, Any]] = {}
    for j in items:
        group = groups.setdefault(j.query_id, {"trend": j.trend, "genre": j.genre, "judged": 0, "relevant": 0,
                                               "grades": {}})  # fmt: skip
        group["judged"] += 1
        group["relevant"] += int(j.grade >= 1)
        group["grades"][str(j.grade)] = group["grades"].get(str(j.grade), 0) + 1
    if as_json:
        print_json({"queries": list(groups.values()), "judgments": len(items)})
        return
    table = Table(title=f"{len(items)} judgments, {len(groups)} queries", title_justify="left")
    for column in ("trend", "genre", "judged", "relevant", "grades"):
        table.add_column(column, justify="right" if column in ("judged", "relevant") else "left")
    for g in groups.values():
        grades = " ".join(f"{k}:{v}" for k, v in sorted(g["grades"].items()))
        table.add_row(
            escape(g["trend"]), escape(g["genre"] or "(all)"), str(g["judged"]), str(g["relevant"]), grades
        )
    out.print(table)


@judgments_app.command("history")
def history_command(
    trend: str = typer.Option(None, "--trend"),
    genre: str = typer.Option(None, "--genre"),
    doc_id: int = typer.Option(None, "--doc"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every change to the judgments (who, when, old and new grade), oldest first."""
    settings = cli_settings()
    store = _store(settings)
    changes = store.changes(trend=trend, genre=genre, doc_id=doc_id)
    store.close()
    if as_json:
        print_json({"changes": [{**c.__dict__, "at": c.at.isoformat()} for c in changes]})
        return
    table = Table(title=f"{len(changes)} changes", title_justify="left")
    for column in ("when (UTC)", "who", "trend | genre", "doc", "old", "new", "source"):
        table.add_column(column)
    for c in changes:
        query = escape(str(QueryId(c.trend, c.genre)))
        table.add_row(c.at.strftime("%Y-%m-%d %H:%M:%S"), escape(c.who), query,
                      str(c.doc_id), _grade(c.old_grade), _grade(c.new_grade), escape(c.source))  # fmt: skip
    out.print(table)


def _grade(value: int | None) -> str:
    return "-" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)
    app.command("report")(report_command)
    app.add_typer(judgments_app, name="judgments")
