"""``freshrank trends replay|top|stream|label|simulate``: detect trending hashtags and keep the top N."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import typer

from freshrank.config import Settings, cli_settings
from freshrank.console import err, out, print_json, progress

if TYPE_CHECKING:
    from freshrank.trends.base import Trend, TrendStore
    from freshrank.trends.engine import TrendEngine
    from freshrank.trends.sources.live import ReconnectingSource
    from freshrank.trends.sources.replay import ReplayReport

trends_app = typer.Typer(
    help="Trending hashtags: event-time sliding windows ranked by burst score, kept in a store.",
    no_args_is_help=True,
)


def _exit_codes() -> tuple[int, int, int]:
    from freshrank.exitcodes import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE

    return EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_ERROR


def _store(settings: Settings, url: str | None) -> TrendStore:
    from freshrank.trends import open_trend_store

    return open_trend_store(url or settings.resolved_trend_store_url, settings.trends.ttl_seconds)


@contextmanager
def _unavailable_exits() -> Iterator[None]:
    """A store that cannot be reached exits with EXIT_UNAVAILABLE and one clear line."""
    import redis

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        err.print(f"[red]trend store unavailable:[/] {exc}")
        raise typer.Exit(_exit_codes()[1]) from exc


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    file = Path(path)
    if not file.is_file():
        err.print(f"[red]input not found:[/] {path}")
        raise typer.Exit(_exit_codes()[0])
    if file.suffix == ".gz":
        return gzip.open(file, "rt", encoding="utf-8", errors="replace")
    return file.open(encoding="utf-8", errors="replace")


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    _open_input(path).close()  # the same checks and exits
    if Path(path).suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return Path(path).open("rb")


def _tracked_lines(fh: Iterable[str], total: int | None) -> Iterator[str]:
    """Lines of ``fh`` with a progress bar on stderr (advanced every 10,000 lines)."""
    with progress() as bar:
        task = bar.add_task("replaying", total=total)
        done = 0
        for number, line in enumerate(fh, start=1):
            done += len(line)
            if not number % 10_000:
                bar.update(task, completed=done)
            yield line
        bar.update(task, completed=total or done)


def _print_trends(trends: list[Trend], as_json: bool) -> None:
    if as_json:
        print_json([t.to_dict() for t in trends])
        return
    from rich.table import Table

    table = Table("rank", "hashtag", "label", "z", "p-value", "count", "expected", "previous", "authors")
    for rank, t in enumerate(trends, start=1):
        authors = "" if t.authors is None else str(t.authors)
        expected = "" if t.expected is None else f"{t.expected:.1f}"
        score, p, baseline = f"{t.score:.2f}", f"{t.p_value:.1e}", f"{t.baseline:g}"
        table.add_row(str(rank), t.hashtag, t.label, score, p, str(t.count), expected, baseline, authors)
    if trends:
        out.print(table)
    else:
        err.print("no trends (the stream is empty, nothing qualifies, or the snapshot expired)")


@trends_app.command("replay")
def replay(
    input: str = typer.Option(
        ..., "--input", "-i", help="JSONL(.gz) of {text, created_at, user?}; '-' = stdin."
    ),
    speed: float = typer.Option(0.0, help="Event seconds per wall second (e.g. 60); 0 = full speed."),
    top_n: int = typer.Option(None, "--top", help="How many trends (default: settings.trends.top_n)."),
    store_url: str = typer.Option(None, "--store", help="Trend store URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of the final top N on stdout."),
    workers: int = typer.Option(
        None, help="Parser processes at full speed (default 0: a read-ahead thread parses, measured faster)."
    ),
    max_line_bytes: int = typer.Option(
        None, min=1, help="Skip (and report) longer lines (default: settings.trends.max_line_bytes, 1 MiB)."
    ),
    arrival_time: bool = typer.Option(
        False, "--arrival-time", help="A post without created_at takes the time it is read at."
    ),
) -> None:
    """Replay a post file through the engine; print the final top N and write it to the trend store.

    With --speed the replay runs in scaled real time and writes a snapshot at every slide. A post dated
    more than 366 days after now is malformed. When no valid post is left (or all are late) the stored trends
    are kept and the exit code is 4.
    """
    from freshrank.exitcodes import EXIT_NO_DATA
    from freshrank.trends.engine import TrendEngine
    from freshrank.trends.sources.replay import ReplayReport, bounded_lines, replay_file, replay_lines

    settings = cli_settings()
    engine = TrendEngine(settings.trends)
    n = top_n or settings.trends.top_n
    max_line = max_line_bytes or settings.trends.max_line_bytes
    report = ReplayReport()
    with _unavailable_exits():
        store = _store(settings, store_url)
        on_tick = (lambda e: store.replace(e.top(n))) if speed else None
        total = Path(input).stat().st_size if input != "-" and Path(input).is_file() else None
        if speed or arrival_time:
            with _open_input(input) as fh:
                lines = _tracked_lines(bounded_lines(fh, max_line, report), total)
                replay_lines(engine, lines, speed=speed, on_tick=on_tick, report=report, arrival=arrival_time)
        else:
            with _open_binary(input) as raw, progress() as bar:
                task = bar.add_task("replaying", total=total)
                on_bytes = lambda size: bar.advance(task, size)  # noqa: E731
                replay_file(
                    engine, raw, workers=workers, report=report, on_bytes=on_bytes, max_line_bytes=max_line
                )
        engine.finish()
        trends = engine.top(n)
        counted = report.posts - engine.stats.late
        if counted > 0:
            store.replace(trends)
        store.close()
    _report_malformed(report)
    stats = engine.stats
    err.print(
        f"{report.posts:,} posts, {stats.late:,} late, {report.malformed_count:,} malformed lines, "
        f"{engine.tracked_tags:,} tags tracked; window ends {engine.tick}"
    )
    if counted <= 0:
        why = "no valid post" if not report.posts else f"all {report.posts:,} posts are late"
        err.print(f"[red]{why} in {report.lines:,} lines: the stored trends are left as they were[/]")
        raise typer.Exit(EXIT_NO_DATA)
    _print_trends(trends, as_json)


def _report_malformed(report: ReplayReport) -> None:
    for bad in report.malformed[:10]:
        err.print(f"[yellow]line {bad.line}:[/] {bad.reason}")
    if report.malformed_count > 10:
        err.print(f"[yellow]… {report.malformed_count - 10:,} more malformed lines[/]")


SOURCES = ("bluesky", "mastodon", "x", "stdin")


@trends_app.command("stream")
def stream(
    source: str = typer.Option(..., "--source", "-s", help="bluesky | mastodon | x | stdin (JSONL lines)."),
    url: str = typer.Option(
        None, help="Jetstream WebSocket URL, Mastodon server (https://mastodon.social) or X stream URL."
    ),
    token: str = typer.Option(
        None, envvar="FRESHRANK_TRENDS_TOKEN", help="Mastodon access token or X bearer token."
    ),
    timeline: str = typer.Option("public", help="Mastodon timeline: public | local | hashtag."),
    tag: str = typer.Option(None, help="Mastodon hashtag timeline's tag."),
    transport: str = typer.Option("sse", help="Mastodon transport: sse | websocket."),
    backfill_minutes: int = typer.Option(0, help="X: ask for up to 5 minutes of backfill on reconnect."),
    max_posts: int = typer.Option(0, help="Stop after this many posts (0 = run until interrupted)."),
    seconds: float = typer.Option(0.0, help="Stop after this many seconds (0 = run until interrupted)."),
    resume: bool = typer.Option(True, help="Resume from the cursor saved by the last run (state dir)."),
    store_url: str = typer.Option(None, "--store", help="Trend store URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="At the end, print the top N as one JSON list."),
) -> None:
    """Follow a live stream and write the top N to the trend store at every slide.

    Reconnects with exponential backoff and resumes from a cursor where the service offers one
    (Jetstream time_us, Mastodon timeline backfill by id, X backfill_minutes).
    """
    from freshrank.trends.engine import TrendEngine

    if source not in SOURCES:
        err.print(f"[red]unknown source {source!r}:[/] choose one of {', '.join(SOURCES)}")
        raise typer.Exit(_exit_codes()[0])
    settings = cli_settings()
    engine = TrendEngine(settings.trends)
    n = settings.trends.top_n
    with _unavailable_exits():
        store = _store(settings, store_url)
        if source == "stdin":
            from freshrank.trends.sources.replay import replay_lines

            report = replay_lines(engine, sys.stdin, on_tick=lambda e: store.replace(e.top(n)))
            engine.finish()
            _report_malformed(report)
        else:
            from freshrank.trends.sources.live import SourceError

            cursor_file = settings.ensure_state_dir() / f"trends-{source}.cursor"
            try:
                live = _live_source(source, url, token, timeline, tag, transport, backfill_minutes)
            except (SourceError, ValueError) as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(_exit_codes()[0]) from exc
            if resume and cursor_file.is_file():
                live.cursor = cursor_file.read_text().strip() or None
            try:
                _follow(live, engine, store, n, max_posts, seconds, cursor_file)
            except SourceError as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(_exit_codes()[1]) from exc
        trends = engine.top(n)
        counted = engine.stats.posts - engine.stats.late
        if counted > 0:
            store.replace(trends)
        store.close()
    err.print(f"{engine.stats.posts:,} posts, {engine.stats.late:,} late; window ends {engine.tick}")
    if counted <= 0:
        err.print("[yellow]no valid post: the stored trends are left as they were[/]")
        if source == "stdin":
            from freshrank.exitcodes import EXIT_NO_DATA

            raise typer.Exit(EXIT_NO_DATA)
    if as_json:
        _print_trends(trends, True)


def _live_source(
    source: str,
    url: str | None,
    token: str | None,
    timeline: str,
    tag: str | None,
    transport: str,
    backfill_minutes: int,
) -> ReconnectingSource:
    import os

    if source == "bluesky":
        from freshrank.trends.sources.bluesky import DEFAULT_URL, BlueskySource

        return BlueskySource(url or DEFAULT_URL)
    if source == "mastodon":
        from freshrank.trends.sources.mastodon import MastodonSource

        token = token or os.environ.get("FRESHRANK_MASTODON_TOKEN")
        return MastodonSource(url or "https://mastodon.social", timeline, tag, token, transport)
    from freshrank.trends.sources.x import DEFAULT_URL as X_URL
    from freshrank.trends.sources.x import XSource

    token = token or os.environ.get("FRESHRANK_X_BEARER_TOKEN", "")
    return XSource(token, url or X_URL, backfill_minutes=backfill_minutes)


def _follow(
    live: ReconnectingSource,
    engine: TrendEngine,
    store: TrendStore,
    n: int,
    max_posts: int,
    seconds: float,
    cursor_file: Path,
) -> None:
    """Consume ``live`` until ``max_posts``/``seconds``/Ctrl-C; a snapshot (and the cursor) at every slide."""
    import asyncio
    import time

    def snapshot() -> None:
        store.replace(engine.top(n))
        if live.cursor:
            cursor_file.write_text(live.cursor)

    async def consume() -> None:
        ticks, posts = engine.stats.ticks, 0
        async for post in live.posts():
            engine.add(post)
            posts += 1
            if engine.stats.ticks != ticks:
                ticks = engine.stats.ticks
                snapshot()
            if max_posts and posts >= max_posts:
                return

    async def quiet_clock() -> None:
        """When no post arrives for a slide, move the watermark by wall-clock time."""
        slide = engine.settings.slide_seconds
        while True:
            before = engine.stats.posts
            await asyncio.sleep(slide)
            ticks = engine.stats.ticks
            if engine.stats.posts == before:
                engine.advance_to(time.time())
                if engine.stats.ticks != ticks:
                    snapshot()

    async def main() -> None:
        clock = asyncio.create_task(quiet_clock())
        try:
            await asyncio.wait_for(consume(), seconds or None)
        except TimeoutError:
            pass
        finally:
            clock.cancel()
        if live.cursor:
            cursor_file.write_text(live.cursor)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: writing the last snapshot[/]")


@trends_app.command("top")
def top(
    n: int = typer.Option(None, "--n", "-n", help="How many (default: settings.trends.top_n)."),
    store_url: str = typer.Option(None, "--store", help="Trend store URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
) -> None:
    """The current top N from the trend store (empty when the snapshot is older than the TTL)."""
    settings = cli_settings()
    with _unavailable_exits():
        store = _store(settings, store_url)
        trends = store.top(n or settings.trends.top_n)
        store.close()
    _print_trends(trends, as_json)


@trends_app.command("label")
def label(
    hashtags: list[str] = typer.Argument(..., help="Hashtags, e.g. '#SharkWeek' sharkweek '#WWII'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object {hashtag: label}."),
) -> None:
    """Show the classifier label of hashtags (camelCase/digit split, word segmentation, acronyms kept)."""
    from freshrank.labels import hashtag_to_label

    labels = {tag: hashtag_to_label(tag) for tag in hashtags}
    if as_json:
        print_json(labels)
        return
    for tag, text in labels.items():
        typer.echo(f"{tag}\t{text}")


@trends_app.command("simulate")
def simulate(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the replay JSONL."),
    hours: float = typer.Option(2.0, help="Length of the stream in hours."),
    rate: float = typer.Option(5.0, help="Background posts per second (sampled from the shared tweets)."),
    popular_tag: str = typer.Option("love", help="Always-popular tag ('' = none)."),
    popular_rate: float = typer.Option(0.5, help="Posts per second of the always-popular tag."),
    burst_tag: str = typer.Option("christmas", help="Tag that bursts ('' = none)."),
    burst_at: float = typer.Option(110.0, help="Minutes after the start when the burst begins."),
    burst_minutes: float = typer.Option(5.0, help="Length of the burst in minutes."),
    burst_rate: float = typer.Option(0.5, help="Posts per second of the bursting tag."),
    seed: int = typer.Option(7, help="Random seed."),
    epoch_ms: bool = typer.Option(False, help="Write created_at as epoch ms instead of ISO-8601."),
) -> None:
    """Write a replay file with a known answer: steady background + always-popular tag + a burst."""
    from freshrank.trends.simulate import Scenario, load_texts, write_jsonl

    settings = cli_settings()
    if not settings.tweets_path.is_file():
        err.print(f"[red]tweets not found:[/] {settings.tweets_path} (set FRESHRANK_DATA_DIR)")
        raise typer.Exit(_exit_codes()[0])
    scenario = Scenario(
        seconds=hours * 3600,
        background_rate=rate,
        popular_tag=popular_tag or None,
        popular_rate=popular_rate,
        burst_tag=burst_tag.lstrip("#") or None,
        burst_at_seconds=burst_at * 60,
        burst_seconds=burst_minutes * 60,
        burst_rate=burst_rate,
        seed=seed,
    )
    lines = write_jsonl(scenario.posts(load_texts(settings.tweets_path)), output, epoch_ms=epoch_ms)
    err.print(f"wrote {lines:,} posts to {output}; burst of #{scenario.burst_tag} at {scenario.burst_at}")


@trends_app.command("bench-detect")
def bench_detect(
    hours: float = typer.Option(4.0, help="Length of the background stream in hours."),
    rate: float = typer.Option(5.0, help="Background posts per second (sampled from the shared tweets)."),
    repeats: int = typer.Option(2, min=1, help="Injected bursts per (shape, size)."),
    seed: int = typer.Option(13, help="Random seed (burst times, authors, background sample)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Inject known bursts (sudden, gradual, one-author spam; several sizes) into the shared tweets at random
    times and report recall, precision, time to detection and false trends per hour of the top N, for the
    configured burst test and the former velocity score (docs/trends.md, "Detection benchmark")."""
    import random

    from freshrank.trends.detect import StreamSpec, detect, make_bursts, make_stream
    from freshrank.trends.score import VelocityModel
    from freshrank.trends.simulate import load_texts

    settings = cli_settings()
    if not settings.tweets_path.is_file():
        err.print(f"[red]tweets not found:[/] {settings.tweets_path} (set FRESHRANK_DATA_DIR)")
        raise typer.Exit(_exit_codes()[0])
    if hours * 3600 <= 2 * settings.trends.window_seconds + 3600:
        err.print("[red]error:[/] --hours must leave an hour of bursts after the two-window warm-up")
        raise typer.Exit(_exit_codes()[0])
    spec = StreamSpec(hours=hours, rate_per_s=rate, repeats=repeats, seed=seed)
    rng = random.Random(seed)
    bursts = make_bursts(spec, rng)
    posts = make_stream(load_texts(settings.tweets_path), spec, bursts, rng)
    results = [
        detect(
            posts, bursts, settings.trends, VelocityModel(), "before: velocity (c - p)/sqrt(p + 1)", hours
        ),
        detect(posts, bursts, settings.trends, None, "after: Poisson z (trends/score.py)", hours),
    ]
    if as_json:
        print_json({"posts": len(posts), "bursts": len(bursts), "results": [r.to_dict() for r in results]})
        return
    from rich.table import Table

    table = Table("score", "recall", "precision", "false trends/h", "spam trended", "median min to detect")
    for r in results:
        minutes = "" if r.median_minutes_to_detect is None else f"{r.median_minutes_to_detect:.0f}"
        table.add_row(
            r.name, f"{r.recall:.2f}", f"{r.precision:.2f}", f"{r.false_trends_per_hour:.1f}",
            str(r.spam_trended), minutes,
        )  # fmt: skip
    out.print(table)


def register(app: typer.Typer) -> None:
    from freshrank.trends.flink.cli import register as register_flink

    register_flink(trends_app)  # `trends flink` and `trends produce`
    app.add_typer(trends_app, name="trends")
