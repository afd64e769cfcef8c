"""``freshrank trends flink`` (the Flink trend job) and ``freshrank trends produce`` (JSONL → Kafka).

Wired into the ``trends`` group by ``trends/commands.py``: ``register(trends_app)``.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import typer

from freshrank.config import cli_settings
from freshrank.console import err, out, print_json

flink_app = typer.Typer(
    help="Run the trend job on Apache Flink (PyFlink SQL in .venv-flink) over a JSONL file or a Kafka topic.",
)


def _exit(code_name: str) -> typer.Exit:
    from freshrank import exitcodes

    return typer.Exit(getattr(exitcodes, code_name))


@flink_app.callback(invoke_without_command=True)
def flink(
    input: Path = typer.Option(None, "--input", "-i", help="JSONL(.gz) of {text, created_at, user?}."),
    kafka_topic: str = typer.Option(None, "--kafka-topic", "-t", help="Read posts from this Kafka topic."),
    bootstrap: str = typer.Option("127.0.0.1:9092", help="Kafka bootstrap servers."),
    follow: bool = typer.Option(
        False, "--follow", help="Kafka: keep reading new posts (a snapshot per slide) until interrupted."
    ),
    store_url: str = typer.Option(None, "--store", help="Trend store URL (default: the configured one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of the final top N on stdout."),
) -> None:
    """Compute the trends with the Flink job and write the top N to the trend store.

    Same windows and burst score as `freshrank trends replay`; see docs/flink-kafka.md. The job runs in a
    local Flink mini-cluster (start-up takes 10-20 s).
    """
    from freshrank.trends.flink.launcher import FlinkJobFailed, FlinkUnavailable, run_trend_job
    from freshrank.trends.flink.spec import KafkaTopic

    if (input is None) == (kafka_topic is None):
        err.print("[red]give exactly one of --input FILE or --kafka-topic TOPIC[/]")
        raise _exit("EXIT_USAGE")
    if input is not None and not input.is_file():
        err.print(f"[red]input not found:[/] {input}")
        raise _exit("EXIT_USAGE")
    settings = cli_settings()
    source: Path | KafkaTopic = input or KafkaTopic(topic=kafka_topic, bootstrap=bootstrap)
    try:
        result = run_trend_job(
            source, store_url or settings.resolved_trend_store_url, settings, bounded=not follow
        )
    except FlinkUnavailable as exc:
        err.print(f"[red]unavailable:[/] {exc}")
        raise _exit("EXIT_UNAVAILABLE") from exc
    except FlinkJobFailed as exc:
        err.print(f"[red]the Flink job failed:[/] {exc}")
        raise _exit("EXIT_ERROR") from exc
    trends = result.to_trends()
    err.print(f"{result.posts:,} posts, {result.windows:,} windows ranked in {result.seconds:.1f} s")
    if as_json:
        print_json([t.to_dict() for t in trends])
        return
    for rank, t in enumerate(trends, start=1):
        out.print(f"{rank:>3}  {t.hashtag:<30} {t.label:<30} score {t.score:8.2f}  count {t.count}")
    if not trends:
        err.print("no trends (the stream is empty or nothing qualifies)")


@contextmanager
def _open_lines(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdin
        return
    file = Path(path)
    if not file.is_file():
        err.print(f"[red]input not found:[/] {path}")
        raise _exit("EXIT_USAGE")
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8", errors="replace") as fh:
        yield fh


def produce(
    input: str = typer.Option(
        ..., "--input", "-i", help="JSONL(.gz) of {text, created_at, user?}; '-' = stdin."
    ),
    topic: str = typer.Option(..., "--topic", "-t", help="Kafka topic (created if missing)."),
    bootstrap: str = typer.Option("127.0.0.1:9092", help="Kafka bootstrap servers."),
    rate: float = typer.Option(
        0.0, "--rate", "--speed", help="Event seconds per wall second (60: a minute a second); 0: full speed."
    ),
    partitions: int = typer.Option(1, min=1, help="Partitions when the topic is created."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with what was sent."),
) -> None:
    """Replay a tweets JSONL file into a Kafka topic (one JSON post per message, keyed by user)."""
    from freshrank.trends.kafka import KafkaUnavailable, ensure_topic
    from freshrank.trends.kafka import produce as produce_posts

    with _open_lines(input) as fh:
        try:
            ensure_topic(topic, bootstrap, partitions)
            report = produce_posts(
                fh,
                topic,
                bootstrap,
                speed=rate or None,
                on_sent=lambda n: err.print(f"sent {n:,} posts", highlight=False),
            )
        except KafkaUnavailable as exc:
            err.print(f"[red]Kafka unavailable:[/] {exc}")
            raise _exit("EXIT_UNAVAILABLE") from exc
    for bad in report.malformed[:10]:
        err.print(f"[yellow]line {bad.line}:[/] {bad.reason}")
    if report.malformed_count > 10:
        err.print(f"[yellow]… {report.malformed_count - 10:,} more malformed lines[/]")
    err.print(
        f"sent {report.sent:,} posts to {topic} in {report.seconds:.1f} s "
        f"({report.malformed_count:,} malformed lines skipped)"
    )
    if as_json:
        print_json(report.to_dict())


def register(trends_app: typer.Typer) -> None:
    """Add ``flink`` and ``produce`` to the ``freshrank trends`` group."""
    trends_app.add_typer(flink_app, name="flink")
    trends_app.command("produce")(produce)
