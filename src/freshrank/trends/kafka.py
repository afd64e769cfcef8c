"""Replay a tweets JSONL file into a Kafka topic, at full speed or in scaled real time (kafka-python).

Each message is one post as JSON, ``{"text", "created_at": epoch ms, "user"?}``, keyed by the user (so
one author's posts stay in order within a partition). Lines are parsed like ``trends replay`` does
(``sources.replay``): malformed lines are skipped, counted and reported with their line numbers.
Sends are batched by the client (``linger_ms``/``batch_size``); every send is acknowledged by the
broker before ``produce`` returns, and a failed send is an error, never silently dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from freshrank.trends.sources.replay import Malformed, ReplayReport, iter_rows, parse_time_ms

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
LINGER_MS = 20
BATCH_BYTES = 256 * 1024
BOOTSTRAP_TIMEOUT_MS = 5000  # a broker that is down is reported after this, not after 30-60 s
# A posts topic is a buffer between the stream and the trend job, not an archive: the broker deletes what is
# older than a day or beyond 1 GiB per partition (the trend windows need 30 minutes).
TOPIC_RETENTION = {"retention.ms": str(24 * 3600 * 1000), "retention.bytes": str(1 << 30)}


class KafkaUnavailable(RuntimeError):
    """The broker cannot be reached (or refused the posts)."""


@dataclass
class ProduceReport:
    """What a replay into Kafka read and sent."""

    topic: str
    lines: int = 0
    sent: int = 0
    malformed_count: int = 0
    malformed: list[Malformed] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "lines": self.lines,
            "sent": self.sent,
            "malformed": self.malformed_count,
            "malformed_lines": [{"line": m.line, "reason": m.reason} for m in self.malformed],
            "seconds": round(self.seconds, 3),
            "posts_per_s": round(self.sent / self.seconds, 1) if self.seconds else None,
        }


def ensure_topic(topic: str, bootstrap: str = DEFAULT_BOOTSTRAP, partitions: int = 1) -> bool:
    """Create ``topic`` if it does not exist; True when it was created."""
    admin = _admin(bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1, topic_configs=TOPIC_RETENTION)]
        )
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


def delete_topic(topic: str, bootstrap: str = DEFAULT_BOOTSTRAP) -> None:
    """Delete ``topic`` (no error when it does not exist)."""
    admin = _admin(bootstrap)
    try:
        admin.delete_topics([topic])
    except UnknownTopicOrPartitionError:
        pass
    finally:
        admin.close()


def bootstrap_options(client: type, timeout_ms: int = BOOTSTRAP_TIMEOUT_MS) -> dict[str, int]:
    """How long ``client`` may look for the broker, where this kafka-python version lets us say so."""
    defaults: dict[str, object] = getattr(client, "DEFAULT_CONFIG", {})
    return {"bootstrap_timeout_ms": timeout_ms} if "bootstrap_timeout_ms" in defaults else {}


def _admin(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=15000, **bootstrap_options(KafkaAdminClient)
        )
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} is unreachable: {exc}") from exc


def post_message(row: object) -> tuple[bytes | None, bytes, int]:
    """(key, value, epoch ms) of one parsed JSONL row; raises KeyError/TypeError/ValueError if malformed."""
    if not isinstance(row, dict):
        raise TypeError("not a JSON object")
    text = row["text"]
    if not isinstance(text, str):
        raise TypeError("text is not a string")
    ms = parse_time_ms(row["created_at"])
    message: dict[str, object] = {"text": text, "created_at": ms}
    user = row.get("user")
    if user is not None:
        message["user"] = str(user)
    key = None if user is None else str(user).encode("utf-8")
    return key, json.dumps(message, ensure_ascii=False).encode("utf-8"), ms


class _Pacer:
    """Sleeps so that event time advances ``speed`` times faster than wall-clock time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._first: tuple[int, float] | None = None

    def wait(self, ms: int) -> None:
        if self._first is None:
            self._first = (ms, time.monotonic())
            return
        first_ms, first_wall = self._first
        delay = first_wall + (ms - first_ms) / 1000 / self.speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def produce(
    lines: Iterable[str],
    topic: str,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    *,
    speed: float | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> ProduceReport:
    """Send every well-formed line of ``lines`` to ``topic``; ``speed`` = event seconds per wall second."""
    report = ProduceReport(topic=topic)
    parsed = ReplayReport()
    started = time.monotonic()
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=LINGER_MS,
            batch_size=BATCH_BYTES,
            retries=5,
            request_timeout_ms=30000,
            **bootstrap_options(KafkaProducer),
        )
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    failures: list[BaseException] = []
    pacer = _Pacer(speed) if speed else None
    try:
        for number, row in iter_rows(lines, parsed):
            if row is None:
                continue
            try:
                key, value, ms = post_message(row)
            except (KeyError, TypeError, ValueError) as exc:
                parsed.bad(number, _reason(exc))
                continue
            if pacer is not None:
                pacer.wait(ms)
            producer.send(topic, key=key, value=value).add_errback(failures.append)
            report.sent += 1
            if on_sent is not None and not report.sent % 10_000:
                on_sent(report.sent)
        producer.flush()
    finally:
        producer.close(timeout=30)
    if failures:
        raise KafkaUnavailable(f"{len(failures)} of {report.sent} posts were not acknowledged: {failures[0]}")
    report.lines = parsed.lines
    report.malformed_count, report.malformed = parsed.malformed_count, parsed.malformed
    report.seconds = time.monotonic() - started
    return report


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
