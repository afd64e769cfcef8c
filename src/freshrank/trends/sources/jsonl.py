"""Replay JSONL parsing shared by the sequential replay and its worker processes.

Lines go in batches: a batch is up to ``BATCH_LINES`` consecutive non-blank lines, cut at blank lines and at
line numbers ``1, 1 + BATCH_LINES, 1 + 2·BATCH_LINES …`` (a worker's block of the file is also cut at its
ends). Each batch is one ``orjson.loads``; a batch with a bad line is parsed line by line to report it, and
malformed lines are reported in line order, so the report does not depend on where batches are cut. This
module imports nothing heavy, so worker processes start fast.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from freshrank.trends.extract import extract_hashtags

_loads: Callable[[str], Any]
try:  # orjson parses the batches about twice as fast; the standard library is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

BATCH_LINES = 2048
MAX_REPORTED = 100
CACHE_TEXTS = 100_000  # texts whose hashtags are remembered (reposts repeat texts verbatim)
CACHE_TEXT_CHARS = 1000
_SECONDS_BELOW = 1e11
_MAX_MS = 2**62  # event times beyond ±146 million years are malformed
# An event time more than this after the wall clock is malformed: one post dated 2099 would otherwise move the
# watermark past every other post (all "late") and empty the trends. A year, so that scheduled or simulated
# streams (the demo's Christmas Eve) still replay.
MAX_FUTURE_SECONDS = 366 * 86_400
_FUTURE_MS = MAX_FUTURE_SECONDS * 1000
_cache: dict[str, list[str]] = {}

Bad = Callable[[int, str], None]


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


class Clock:
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


def future_limit_ms() -> int:
    """The latest event time a post may have now (epoch ms): the wall clock plus ``MAX_FUTURE_SECONDS``."""
    return int(time.time() * 1000) + MAX_FUTURE_SECONDS * 1000


def check_time(ms: int, limit_ms: int) -> int:
    """``ms``, or ValueError when it is out of range or more than ``MAX_FUTURE_SECONDS`` ahead."""
    if not -_MAX_MS < ms < _MAX_MS:
        raise ValueError("created_at is out of range")
    if ms > limit_ms:
        raise ValueError(f"created_at is more than {MAX_FUTURE_SECONDS // 86_400} days after now")
    return ms


def hashtags(text: str) -> list[str]:
    """``extract_hashtags`` remembered per text (it is a pure function; the lists must not be changed)."""
    tags = _cache.get(text)
    if tags is None:
        tags = extract_hashtags(text)
        if len(text) <= CACHE_TEXT_CHARS:
            if len(_cache) >= CACHE_TEXTS:
                _cache.clear()
            _cache[text] = tags
    return tags


def reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, AttributeError):
        return "not a JSON object"
    return str(exc) or type(exc).__name__


def batches(lines: Iterable[str], first_number: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(first line number, stripped non-blank lines) per batch; blank lines are skipped but keep numbers."""
    batch: list[str] = []
    first = first_number
    for number, line in enumerate(lines, start=first_number):
        stripped = line.strip()
        if not stripped:
            if batch:
                yield first, batch
                batch = []
            continue
        if not batch:
            first = number
        batch.append(stripped)
        if not number % BATCH_LINES:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


@dataclass
class NotJson:
    """The row of a line that is not JSON."""

    reason: str


def parse_rows(batch: list[str]) -> list[Any]:
    """Parsed rows of a batch, ``NotJson`` for a line that is not JSON."""
    try:
        rows = _loads("[" + ",".join(batch) + "]")
        if len(rows) == len(batch):
            return rows
    except ValueError:
        pass
    parsed: list[Any] = []
    for line in batch:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            parsed.append(NotJson(f"invalid JSON: {exc.msg} (column {exc.colno})"))
    return parsed


def parse_batch(batch: list[str], first: int, bad: Bad) -> list[Any]:
    """Parsed rows of a batch, None for a line that is not JSON (reported through ``bad``)."""
    rows = parse_rows(batch)
    for offset, row in enumerate(rows):
        if type(row) is NotJson:
            bad(first + offset, row.reason)
            rows[offset] = None
    return rows


@dataclass
class Posts:
    """Posts in arrival order as columns: event time (ms), hashtags, author; plus the bad lines."""

    times: array[int] = field(default_factory=lambda: array("q"))
    tags: list[list[str]] = field(default_factory=list)
    users: list[str | None] = field(default_factory=list)
    lines: int = 0  # non-blank lines read
    malformed: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_REPORTED
    malformed_count: int = 0

    def bad(self, line: int, why: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MAX_REPORTED:
            self.malformed.append((line, why))


def add_rows(
    rows: list[Any], first: int, clock: Clock, posts: Posts, bad: Bad, arrival: bool = False
) -> None:
    """Append the posts of parsed rows (line numbers from ``first``); report the malformed ones in order.
    ``arrival``: a row without ``created_at`` takes the wall-clock time it is read at."""
    known_seconds = clock.seconds
    limit = future_limit_ms()
    times, tags, users = posts.times, posts.tags, posts.users
    for number, row in enumerate(rows, start=first):
        try:
            if type(row) is not dict:
                raise AttributeError
            text = row["text"]
            if type(text) is not str:
                raise TypeError("text is not a string")
            raw = row["created_at"] if not arrival else row.get("created_at", limit - _FUTURE_MS)
            # inline fast path of Clock.ms for "YYYY-MM-DDTHH:MM:SS.mmmZ" (the common case)
            base = known_seconds.get(raw[:19]) if type(raw) is str and len(raw) == 24 else None
            if base is not None and raw[23] == "Z" and raw[19] == "." and raw[20:23].isdigit():
                ms = base + int(raw[20:23])
            else:
                ms = clock.ms(raw)
            if not -_MAX_MS < ms <= limit:
                check_time(ms, limit)
            user = row.get("user")
            found = hashtags(text)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            if type(row) is NotJson:
                bad(number, row.reason)
            elif row is not None:
                bad(number, reason(exc))
            continue
        times.append(ms)
        tags.append(found)
        users.append(user if user is None or type(user) is str else str(user))


def parse_block(block: bytes, first_line: int) -> Posts:
    """The posts of a block of whole JSONL lines (UTF-8, undecodable bytes replaced) that starts at line
    ``first_line``: what a worker process does."""
    lines = block.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    posts, clock = Posts(), Clock()
    for first, batch in batches(lines, first_line):
        posts.lines += len(batch)
        add_rows(parse_rows(batch), first, clock, posts, posts.bad)
    return posts
