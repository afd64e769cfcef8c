"""JSONL replay: ``{"text", "created_at", "user"?}`` per line, at full speed or scaled real time.

``created_at`` is ISO-8601 (``Z`` or an offset; naive = UTC) or a number: epoch milliseconds (numbers below
1e11, i.e. before 1973 in ms, are taken as epoch seconds). A line that is not a JSON object with a string
``text`` and a readable ``created_at`` is malformed: it is skipped, counted and reported with its line
number; the replay never aborts on it. Lines are parsed in batches (one ``json.loads`` per batch, per-line
only for a batch that has a bad line), which is what makes the replay fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from freshrank.trends.engine import Post, TrendEngine, to_epoch_ms
from freshrank.trends.extract import extract_hashtags

_loads: Callable[[str], Any]
try:  # orjson parses the batches about twice as fast; the standard library is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

BATCH_LINES = 2048
MAX_REPORTED = 100
_SECONDS_BELOW = 1e11


@dataclass
class Malformed:
    line: int
    reason: str


@dataclass
class ReplayReport:
    """What a replay read: lines, posts counted, and the malformed lines (first ``MAX_REPORTED``)."""

    lines: int = 0
    posts: int = 0
    malformed_count: int = 0
    malformed: list[Malformed] = field(default_factory=list)

    def bad(self, line: int, reason: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MAX_REPORTED:
            self.malformed.append(Malformed(line, reason))


class _Clock:
    """Parses ``created_at`` to epoch ms; ``YYYY-MM-DDTHH:MM:SS.mmmZ`` reuses the parse of its second."""

    def __init__(self) -> None:
        self.seconds: dict[str, int] = {}

    def ms(self, raw: object) -> int:
        if type(raw) is str and len(raw) == 24 and raw[19] == "." and raw[23] == "Z":
            second = raw[:19]
            base = self.seconds.get(second)
            if base is None:
                if len(self.seconds) > 100_000:
                    self.seconds.clear()
                base = self.seconds[second] = parse_time_ms(second)
            millis = raw[20:23]
            if millis.isdigit():
                return base + int(millis)
        return parse_time_ms(raw)


def parse_time_ms(raw: object) -> int:
    """Epoch milliseconds from an ISO-8601 string or an epoch number (ms, or seconds below 1e11)."""
    if isinstance(raw, bool):
        raise ValueError("created_at is a boolean")
    if isinstance(raw, int | float):
        return round(raw * 1000) if abs(raw) < _SECONDS_BELOW else round(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return parse_time_ms(float(text))
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    raise ValueError(f"created_at must be ISO-8601 or epoch ms, got {type(raw).__name__}")


def _parse_batch(lines: list[str]) -> list[Any] | None:
    try:
        rows = _loads("[" + ",".join(lines) + "]")
    except ValueError:
        return None
    return rows if len(rows) == len(lines) else None


def _parse_each(lines: list[str], first_line: int, report: ReplayReport) -> list[Any]:
    rows: list[Any] = []
    for offset, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            report.bad(first_line + offset, f"invalid JSON: {exc.msg} (column {exc.colno})")
            rows.append(None)
    return rows


def _batches(lines: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, non-blank lines) batches; blank lines are skipped but keep their numbers."""
    batch: list[str] = []
    first = 1
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            if batch:
                yield first, batch
                batch = []
            first = number + 1
            continue
        if not batch:
            first = number
        batch.append(stripped)
        if len(batch) >= size:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


def iter_rows(lines: Iterable[str], report: ReplayReport) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or None) for every non-blank line."""
    for first, rows in iter_batches(lines, report):
        yield from enumerate(rows, start=first)


def iter_batches(lines: Iterable[str], report: ReplayReport) -> Iterator[tuple[int, list[Any]]]:
    """(first line number, parsed rows; None for bad JSON) per batch of consecutive non-blank lines."""
    for first, batch in _batches(lines, BATCH_LINES):
        report.lines += len(batch)
        rows = _parse_batch(batch)
        yield first, rows if rows is not None else _parse_each(batch, first, report)


def replay_lines(
    engine: TrendEngine,
    lines: Iterable[str],
    *,
    speed: float | None = None,
    on_tick: Callable[[TrendEngine], None] | None = None,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Feed JSONL lines into ``engine``; ``speed`` = event seconds per wall second (None: full speed).

    At full speed and without ``on_tick``, posts go to the engine a batch at a time (the fast path); with
    ``on_tick`` (called at every slide) or ``speed`` (every post paced) they go one by one.
    """
    report = report or ReplayReport()
    if speed:
        return _replay_paced(engine, lines, speed, on_tick, report)
    clock, extract = _Clock(), extract_hashtags
    known_seconds = clock.seconds
    ticks = engine.stats.ticks
    for first, rows in iter_batches(lines, report):
        times: list[int] = []
        tags: list[list[str]] = []
        users: list[str | None] = []
        for number, row in enumerate(rows, start=first):
            try:
                if type(row) is not dict:
                    raise AttributeError
                text = row["text"]
                if type(text) is not str:
                    raise TypeError("text is not a string")
                raw = row["created_at"]
                # inline fast path of _Clock.ms for "YYYY-MM-DDTHH:MM:SS.mmmZ" (the common case)
                base = known_seconds.get(raw[:19]) if type(raw) is str and len(raw) == 24 else None
                if base is not None and raw[23] == "Z" and raw[19] == "." and raw[20:23].isdigit():
                    ms = base + int(raw[20:23])
                else:
                    ms = clock.ms(raw)
                user = row.get("user")
                found = extract(text)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if row is not None:
                    report.bad(number, _reason(exc))
                continue
            times.append(ms)
            tags.append(found)
            users.append(user if user is None or type(user) is str else str(user))
        report.posts += len(times)
        if on_tick is None:
            engine.add_batch(times, tags, users)
            continue
        for post in zip(times, tags, users, strict=True):
            engine.add_batch(*([value] for value in post))  # type: ignore[arg-type]
            if engine.stats.ticks != ticks:
                ticks = engine.stats.ticks
                on_tick(engine)
    return report


def _replay_paced(
    engine: TrendEngine,
    lines: Iterable[str],
    speed: float,
    on_tick: Callable[[TrendEngine], None] | None,
    report: ReplayReport,
) -> ReplayReport:
    pacer = _Pacer(speed)
    ticks = engine.stats.ticks
    for post in posts_from_rows(lines, report):
        ms = to_epoch_ms(post.created_at)
        pacer.wait(ms)
        engine.add(post)
        if on_tick is not None and engine.stats.ticks != ticks:
            ticks = engine.stats.ticks
            on_tick(engine)
    return report


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, AttributeError):
        return "not a JSON object"
    return str(exc) or type(exc).__name__


class _Pacer:
    """Sleeps so that event time advances ``speed`` times faster than wall-clock time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._start_event: int | None = None
        self._start_wall = 0.0

    def wait(self, ms: int) -> None:
        if self._start_event is None:
            self._start_event, self._start_wall = ms, time.monotonic()
            return
        due = self._start_wall + (ms - self._start_event) / 1000 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def posts_from_rows(lines: Iterable[str], report: ReplayReport) -> Iterator[Post]:
    """The same parsing, as ``Post`` objects (for callers that want posts rather than an engine)."""
    clock = _Clock()
    for number, row in iter_rows(lines, report):
        if row is None:
            continue
        try:
            text = row["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            ms = clock.ms(row["created_at"])
            user = row.get("user")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            report.bad(number, _reason(exc))
            continue
        report.posts += 1
        yield Post(text=text, created_at=ms / 1000, user=None if user is None else str(user))
