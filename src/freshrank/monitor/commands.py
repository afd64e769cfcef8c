"""``freshrank monitor``: one freshness check for a cron job or a Kubernetes CronJob."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import typer
from rich.markup import escape

from freshrank.config import cli_settings
from freshrank.console import err, out, print_json
from freshrank.exitcodes import EXIT_ERROR, EXIT_UNAVAILABLE
from freshrank.monitor.freshness import EXIT_CODES, Thresholds, decide

log = logging.getLogger(__name__)
DEFAULTS = Thresholds()


def monitor_command(
    act: bool = typer.Option(
        False, "--act", help="Carry the decision out: refresh, or retrain → gate → promote."
    ),
    min_peak_z: float = typer.Option(
        DEFAULTS.min_peak_z, help="A label's scores are flat below this peak z."
    ),
    min_confidence: float = typer.Option(
        DEFAULTS.min_confidence, help="NLI: best score below this is unsure."
    ),
    max_flat_share: float = typer.Option(
        DEFAULTS.max_flat_share, help="Retrain above this share of flat labels."
    ),
    drift_similarity: float = typer.Option(
        DEFAULTS.drift_similarity, help="Cosine for 'like an evaluated label'."
    ),
    max_drift_share: float = typer.Option(
        DEFAULTS.max_drift_share, help="Retrain above this share of new labels."
    ),
    max_metric_drop: float = typer.Option(DEFAULTS.max_metric_drop, help="Retrain when nDCG@10 falls more."),
    max_age_days: float = typer.Option(DEFAULTS.max_age_days, help="Retrain a champion older than this."),
    no_drift: bool = typer.Option(
        False, "--no-drift", help="Skip the vocabulary drift check (loads no encoder)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout (logs on stderr)."),
) -> None:
    """Check once whether the rankings are fresh and decide: ok, reclassify or retrain, with reasons.

    Exit codes: 0 ok; 10 reclassify (trending labels the model has not scored yet).

    11 retrain (flat or unsure scores, vocabulary drift, an nDCG@10 drop, or an old model).

    3 when the classifier or search index is unavailable; with --act: 0 when the action succeeded, 1 if not.
    """
    from freshrank.loop.service import ScoringLoop
    from freshrank.monitor.live import MonitorUnavailable, encoder_embed, gather, publish
    from freshrank.monitor.live import act as carry_out

    settings = cli_settings()
    thresholds = Thresholds(min_peak_z, min_confidence, max_flat_share, drift_similarity, max_drift_share,
                            max_metric_drop, max_age_days)  # fmt: skip
    try:
        service = ScoringLoop.from_settings(settings)
        data, warnings, classifier = gather(settings, service)
    except MonitorUnavailable as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    report = decide(data, thresholds, None if no_drift else encoder_embed(classifier))
    publish(report, data)
    if act and report.decision != "ok":
        err.print(f"acting on [bold]{report.decision}[/] …")
        try:
            report.acted = carry_out(settings, report, service)
        except Exception as exc:  # training or refresh failed: report it, exit 1
            log.debug("action failed", exc_info=True)
            report.acted = {"action": report.decision, "ok": False, "error": str(exc)}
    if as_json:
        print_json(report.to_json())
    else:
        colour = {"ok": "green", "reclassify": "yellow", "retrain": "red"}[report.decision]
        out.print(f"[bold {colour}]{report.decision}[/] (model {escape(report.model_version)}, "
                  f"{len(data.trending)} trending labels)")  # fmt: skip
        for reason in report.reasons:
            out.print(f"  - {escape(reason)}")
        if report.acted:
            ok = report.acted.get("ok")
            out.print(f"  acted: {report.acted.get('action')} → {'done' if ok else 'FAILED'} "
                      f"{escape(str(report.acted.get('error', '')))}")  # fmt: skip
    if report.acted is not None:
        raise typer.Exit(0 if report.acted.get("ok") else EXIT_ERROR)
    raise typer.Exit(EXIT_CODES[report.decision])


def gc_command(
    scores_only: bool = typer.Option(False, "--scores-only", help="Leave the evaluation history alone."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout (logs on stderr)."),
) -> None:
    """Delete what retention no longer keeps and report what was freed (settings: retention.*).

    Scores of labels that have not trended for retention.label_days (7) and of model versions that are
    neither current nor among the retention.keep_versions (1) most recently written; evaluation runs older
    than retention.runs_days and judgment changes older than retention.changes_days (365). Judgments are
    never deleted; encoded catalogues not used for retention.cache_days (30). `refresh` runs the scores part
    too. Exit 3 when a store is unreachable, 1 on other errors.
    """
    from freshrank.evaluate.store import StoreUnavailable, open_judgment_store
    from freshrank.loop.commands import open_loop
    from freshrank.loop.retention import prune_cache

    settings = cli_settings()
    policy = settings.retention
    loop = open_loop(settings)
    try:
        report = loop.gc().to_dict()
    except Exception as exc:  # the backend went away between opening and deleting
        err.print(f"[red]error:[/] retention failed: {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    history: dict[str, int] = {}
    if not scores_only:
        history.update(prune_cache(settings.cache_dir, policy.cache_days * 86_400))
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            store = open_judgment_store(settings.resolved_judgments_url, limits=settings.judgments_store)
            runs_before = now - timedelta(days=policy.runs_days)
            history.update(store.prune(runs_before, now - timedelta(days=policy.changes_days)))
        except StoreUnavailable as exc:
            report["errors"].append(str(exc))
    for problem in report["errors"]:
        err.print(f"[yellow]warning:[/] {escape(problem)}")
    if as_json:
        print_json({"scores": report, "history": history})
    else:
        freed = f"; {history.get('evaluation_runs', 0)} evaluation runs" if history else ""
        freed += f", {history.get('judgment_changes', 0)} judgment changes" if history else ""
        freed += f", {history['cache_files']} cached encodings" if history else ""
        out.print(
            f"deleted {len(report['deleted'])} of {report['entries']} stored (model version, label) entries, "
            f"{report['rows']} rows, in {report['seconds']:.2f} s{freed}"
        )
        for item in report["deleted"][:20]:
            out.print(
                f"  {escape(item['model_version'])} {escape(item['label'][:60])!r}: {escape(item['reason'])}"
            )
    if report["errors"]:
        unreachable = any("unavailable" in e for e in report["errors"])
        raise typer.Exit(EXIT_UNAVAILABLE if unreachable else EXIT_ERROR)


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_command)
    app.command("gc")(gc_command)
