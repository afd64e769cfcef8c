"""``freshrank report``: the evaluation history and the last comparison as a PNG and an HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from freshrank.evaluate.base import EvaluationRun, QueryId

GREEN, RED, BLUE, GREY, INK = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e", "#263238"
PALETTE = [BLUE, "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#558b2f"]
METRIC = "ndcg@10"


@dataclass(frozen=True)
class ReportPaths:
    png: Path
    html: Path


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _query_label(qid: str) -> str:
    query = QueryId.parse(qid)
    return _short(query.trend) + (f"  ·  {_short(query.genre, 16)}" if query.genre else "")


def _metric(run: EvaluationRun) -> str:
    k = run.params.get("k", 10)
    return f"ndcg@{k}"


def _system_name(classifier: str, version: str) -> str:
    return _short(version if version.startswith(classifier) else f"{classifier} {version}".strip(), 40)


def _plot_history(ax: Any, runs: Sequence[EvaluationRun]) -> None:
    """Mean nDCG@10 per run: one line per model version, the lexical baseline dashed."""
    xs = list(range(1, len(runs) + 1))
    base = [r.baseline_mean.get(_metric(r), float("nan")) for r in runs]
    ax.plot(
        xs, base, "--", color=GREY, lw=1.5, marker="o", ms=4, label="lexical baseline (BM25 on the hashtag)"
    )
    versions = list(dict.fromkeys(r.model_version for r in runs))
    for i, version in enumerate(versions):
        pts = [(x, r.mean.get(_metric(r), float("nan"))) for x, r in zip(xs, runs, strict=True)
               if r.model_version == version]  # fmt: skip
        name = runs[[r.model_version for r in runs].index(version)].classifier
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=PALETTE[i % len(PALETTE)], lw=2.2,
                marker="o", ms=6, label=_system_name(name, version))  # fmt: skip
    last = runs[-1]
    value, baseline = last.mean.get(_metric(last)), last.baseline_mean.get(_metric(last))
    if value is not None:
        lift = f"  ({value - baseline:+.3f} vs baseline)" if baseline is not None else ""
        ax.annotate(f"{value:.3f}{lift}", (xs[-1], value), textcoords="offset points", xytext=(0, 12),
                    ha="right" if len(xs) > 1 else "center", color=INK, fontsize=11,
                    fontweight="bold")  # fmt: skip
    ax.set_xticks(xs)
    ax.set_xticklabels([_when(r.created_at) for r in runs], rotation=30, ha="right", fontsize=8)
    if len(xs) > 12:
        for i, label in enumerate(ax.get_xticklabels()):
            label.set_visible(i % max(1, len(xs) // 10) == 0 or i == len(xs) - 1)
    ax.set_xlim(0.5, len(xs) + 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean nDCG@10")
    queries = len(runs[-1].per_query)
    title = f"Relevance over time ({len(runs)} runs on the latest run's {queries} judged queries)"
    ax.set_title(title, loc="left", fontsize=13, color=INK)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.22), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)


def _when(at: datetime | None) -> str:
    return at.strftime("%m-%d %H:%M") if at else "?"


def _plot_latest(ax: Any, run: EvaluationRun) -> None:
    """Per-query nDCG@10 of the latest run: classifier bars against the baseline's."""
    import numpy as np

    metric = _metric(run)
    queries = list(run.per_query)
    base = run.details.get("baseline_per_query", {})
    ys = np.arange(len(queries))
    ours = [run.per_query[q].get(metric, 0.0) for q in queries]
    theirs = [base.get(q, {}).get(metric, 0.0) for q in queries]
    ax.barh(ys - 0.2, ours, height=0.4, color=BLUE, label=_system_name(run.classifier, run.model_version))
    ax.barh(ys + 0.2, theirs, height=0.4, color=GREY, label="lexical baseline")
    for y, value, other in zip(ys, ours, theirs, strict=True):
        ax.text(value + 0.01, y - 0.2, f"{value:.2f}", va="center", fontsize=8, color=INK, fontweight="bold")
        ax.text(other + 0.01, y + 0.2, f"{other:.2f}", va="center", fontsize=7, color="#616161")
    ax.set_yticks(ys)
    ax.set_yticklabels([_query_label(q) for q in queries], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("nDCG@10")
    ax.set_title(
        f"Latest run, per judged query ({_when(run.created_at)})", loc="left", fontsize=13, color=INK
    )
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)


def _plot_comparison(ax: Any, run: EvaluationRun) -> None:
    """Per-query deltas (b - a) of the last comparison, green up, red down, with the p-values."""
    details = run.details
    deltas: dict[str, float] = details.get("per_query_delta", {})
    queries = list(deltas)
    values = [deltas[q] for q in queries]
    colors = [GREEN if v > 0 else RED if v < 0 else GREY for v in values]
    ax.barh(range(len(queries)), values, color=colors)
    ax.axvline(0, color=INK, lw=1)
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:+.2f} ", va="center", ha="left" if value >= 0 else "right", fontsize=8)
    ax.set_yticks(range(len(queries)))
    ax.set_yticklabels([_query_label(q) for q in queries], fontsize=9)
    ax.invert_yaxis()
    span = max([abs(v) for v in values] + [0.05]) * 1.35
    ax.set_xlim(-span, span)
    sig = details.get("significance", {})
    metric = details.get("metric", METRIC)
    mean = details.get("delta", {}).get(metric, 0.0)
    ax.set_xlabel(f"{metric}: {_short(details.get('b', 'b'), 40)} − {_short(details.get('a', 'a'), 40)}"
                  "   (green: b ranks better, red: a does)")  # fmt: skip
    ax.set_title(
        f"Last comparison: mean Δ {mean:+.3f}   (t-test p={_p(sig.get('t_test_p'))}, "
        f"randomization p={_p(sig.get('randomization_p'))}, n={sig.get('n', len(queries))})",
        loc="left", fontsize=13, color=INK,
    )  # fmt: skip
    ax.grid(axis="x", alpha=0.3)


def _p(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3g}"


def same_queries(runs: Sequence[EvaluationRun]) -> list[EvaluationRun]:
    """The runs on the same judged queries as the latest one (means over other query sets do not compare)."""
    if not runs:
        return []
    latest = set(runs[-1].per_query)
    return [r for r in runs if set(r.per_query) == latest]


def render_png(path: Path, runs: Sequence[EvaluationRun], comparison: EvaluationRun | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = same_queries(runs)
    panels = (1 if runs else 0) * 2 + (1 if comparison else 0)
    deltas = len(comparison.details.get("per_query_delta", {})) if comparison else 0
    rows = 2 if runs and comparison else 1
    n_queries = max([len(runs[-1].per_query)] if runs else [0])
    height = 4.8 + (0.32 * max(deltas, 5) + 1.5 if rows == 2 else 0)
    fig = plt.figure(figsize=(15, max(height, 4.8 + 0.1 * n_queries)), dpi=110)
    grid = fig.add_gridspec(rows, 2, width_ratios=[1.25, 1], hspace=0.75, wspace=0.32)
    if runs:
        _plot_history(fig.add_subplot(grid[0, 0]), runs)
        _plot_latest(fig.add_subplot(grid[0, 1]), runs[-1])
    if comparison:
        _plot_comparison(fig.add_subplot(grid[rows - 1, :] if panels > 1 else grid[0, :]), comparison)
    for ax in fig.axes:
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle("freshrank relevance report", x=0.01, ha="left", fontsize=16, fontweight="bold", color=INK)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _source(run: EvaluationRun) -> str:
    source = str(run.details.get("source", ""))
    return f"({Path(source).name})" if source else ""


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def render_html(png: Path, runs: Sequence[EvaluationRun], comparison: EvaluationRun | None) -> str:
    e = html.escape
    image = base64.b64encode(png.read_bytes()).decode()
    rows = []
    for r in reversed(runs):
        m, b = _metric(r), r.baseline_mean.get(_metric(r))
        value = r.mean.get(m)
        lift = value - b if value is not None and b is not None else None
        cls = "up" if lift and lift > 0 else "down" if lift and lift < 0 else ""
        rows.append(
            f"<tr><td>{e(_when(r.created_at))}</td><td>{e(r.classifier)}</td><td><code>{e(r.model_version)}</code>"
            f"</td><td>{r.catalog_size:,}</td><td>{len(r.per_query)} {e(_source(r))}</td>"
            f"<td><b>{_fmt(value)}</b></td>"
            f"<td>{_fmt(r.mean.get('p@10'))}</td><td>{_fmt(r.mean.get('recall@100'))}</td>"
            f"<td>{_fmt(r.mean.get('judged@10'))}</td><td>{_fmt(b)}</td>"
            f"<td class='{cls}'>{'–' if lift is None else f'{lift:+.3f}'}</td></tr>"
        )
    history = (
        "<h2>Evaluation runs (newest first)</h2><table><tr><th>when (UTC)</th><th>classifier</th>"
        "<th>model</th>"
        "<th>movies</th><th>queries</th><th>nDCG@10</th><th>P@10</th><th>R@100</th><th>judged@10</th>"
        "<th>baseline nDCG@10</th><th>lift</th></tr>" + "".join(rows) + "</table>"
        if runs
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>freshrank relevance report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #263238; }}
img {{ width: 100%; border: 1px solid #eceff1; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 14px; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #eceff1; text-align: right; }}
th:first-child, td:first-child, td:nth-child(2), th:nth-child(2) {{ text-align: left; }}
.up {{ color: {GREEN}; font-weight: bold; }} .down {{ color: {RED}; font-weight: bold; }}
</style></head><body>
<h1>freshrank relevance report</h1>
<p>nDCG@10 uses exponential gain 2<sup>g</sup>−1 and a log<sub>2</sub> discount, the ideal ranking from all
judged grades; unjudged movies count as 0. Generated {e(datetime.now().strftime("%Y-%m-%d %H:%M"))}.</p>
<img alt="metrics over time and the last comparison" src="data:image/png;base64,{image}">
{history}
{_comparison_html(comparison) if comparison else ""}
</body></html>
"""


def _comparison_html(run: EvaluationRun) -> str:
    e = html.escape
    d = run.details
    metric = d.get("metric", METRIC)
    per_a: dict[str, dict[str, float]] = d.get("per_query_a", {})
    rows = []
    for qid, delta in d.get("per_query_delta", {}).items():
        cls = "up" if delta > 0 else "down" if delta < 0 else ""
        rows.append(
            f"<tr><td>{e(qid)}</td><td>{_fmt(per_a.get(qid, {}).get(metric))}</td>"
            f"<td>{_fmt(run.per_query.get(qid, {}).get(metric))}</td><td class='{cls}'>{delta:+.3f}</td></tr>"
        )
    sig = d.get("significance", {})
    warnings = "".join(f"<li>{e(w)}</li>" for w in d.get("warnings", []))
    return (
        f"<h2>Last comparison ({e(_when(run.created_at))}): {e(str(d.get('b')))} vs {e(str(d.get('a')))}</h2>"
        f"<p>{e(metric)}: paired t-test p = {_p(sig.get('t_test_p'))}, randomization test p = "
        f"{_p(sig.get('randomization_p'))} over {sig.get('n', 0)} queries.</p>"
        f"<table><tr><th>trend | genre</th><th>{e(str(d.get('a')))}</th><th>{e(str(d.get('b')))}</th>"
        f"<th>delta</th></tr>{''.join(rows)}</table>" + (f"<ul>{warnings}</ul>" if warnings else "")
    )


def write_report(
    out_dir: Path, runs: Sequence[EvaluationRun], comparison: EvaluationRun | None
) -> ReportPaths:
    """Write ``report.png`` and ``index.html`` (the PNG embedded, so the page travels as one file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out_dir / "report.png", out_dir / "index.html")
    render_png(paths.png, runs, comparison)
    paths.html.write_text(render_html(paths.png, runs, comparison), encoding="utf-8")
    return paths
