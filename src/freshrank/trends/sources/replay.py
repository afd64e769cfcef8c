"""JSONL replay: ``{"text", "created_at", "user"?}`` per line, at full speed or scaled real time.

``created_at`` is ISO-8601 (``Z`` or an offset; naive = UTC) or a number: epoch milliseconds (numbers below
1e11, i.e. before 1973 in ms, are taken as epoch seconds). A line that is not a JSON object with a string
``text`` and a readable ``created_at`` is malformed: it is skipped, counted and reported with its line
number; the replay never aborts on it. So is a line dated more than ``MAX_FUTURE_SECONDS`` (366 days)
after the wall clock, and a line longer than ``max_line_bytes`` (default ``MAX_LINE_BYTES``, 1 MiB) is
skipped unread (memory stays bounded). With ``arrival=True`` a line without ``created_at`` takes the time
it is read at. Lines are parsed in batches (one ``json.loads`` per batch, per-line only for a batch that
has a bad line), which is what makes the replay fast.

``replay_file`` reads a binary file in blocks of whole lines; a read-ahead thread (or, if asked, worker
processes) parses the next block while this thread feeds the engine block by block in file order: the
engine sees exactly the posts, in exactly the order, of ``replay_lines`` on the same file. A block of clean
lines is read by the compiled reader (``native/``) or column-wise by pyarrow, planned and its hashtags
counted per window run (``columns.parse_columns``; the engine then does no work per post); any other
block is parsed line by line (``jsonl.parse_block``), which reports the bad lines with their numbers.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from multiprocessing import get_context
from typing import IO, Any

import numpy as np

from freshrank.trends.engine import Post, TrendEngine, to_epoch_ms
from freshrank.trends.sources.columns import Columns, Renumbering, parse_columns
from freshrank.trends.sources.jsonl import (
    BATCH_LINES,
    MAX_FUTURE_SECONDS,
    MAX_REPORTED,
    Clock,
    Posts,
    add_rows,
    batches,
    check_time,
    future_limit_ms,
    parse_batch,
    parse_rows,
    parse_time_ms,
    reason,
)
from freshrank.trends.spellings import Spellings

__all__ = [
    "BATCH_LINES",
    "MAX_FUTURE_SECONDS",
    "MAX_LINE_BYTES",
    "Malformed",
    "ReplayReport",
    "bounded_lines",
    "parse_time_ms",
    "replay_file",
    "replay_lines",
]

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 1 << 20
READER_SPELLINGS = 1_000_000  # hashtag spellings the read-ahead thread numbers before starting afresh
_Clock = Clock
_reason = reason


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

    def too_long(self, line: int, size: int, limit: int) -> None:
        self.lines += 1
        self.bad(line, f"line longer than {limit:,} bytes ({size:,}+): skipped")

    def add(self, posts: Columns | Posts) -> None:
        """Count a parsed block (its lines, posts and malformed lines)."""
        self.lines += posts.lines
        self.posts += len(posts.times)
        for line, why in posts.malformed:
            self.bad(line, why)
        self.malformed_count += posts.malformed_count - len(posts.malformed)


def iter_rows(lines: Iterable[str], report: ReplayReport) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or None) for every non-blank line."""
    for first, rows in iter_batches(lines, report):
        yield from enumerate(rows, start=first)


def iter_batches(lines: Iterable[str], report: ReplayReport) -> Iterator[tuple[int, list[Any]]]:
    """(first line number, parsed rows; None for bad JSON) per batch of consecutive non-blank lines."""
    for first, batch in batches(lines):
        report.lines += len(batch)
        yield first, parse_batch(batch, first, report.bad)


def replay_lines(
    engine: TrendEngine,
    lines: Iterable[str],
    *,
    speed: float | None = None,
    on_tick: Callable[[TrendEngine], None] | None = None,
    report: ReplayReport | None = None,
    arrival: bool = False,
) -> ReplayReport:
    """Feed JSONL lines into ``engine``; ``speed`` = event seconds per wall second (None: full speed).

    At full speed and without ``on_tick``, posts go to the engine a batch at a time (the fast path); with
    ``on_tick`` (called at every slide) or ``speed`` (every post paced) they go one by one. ``arrival``: a
    line without ``created_at`` takes the time it is read at. Bound long lines with ``bounded_lines``.
    """
    report = report or ReplayReport()
    if speed:
        return _replay_paced(engine, lines, speed, on_tick, report, arrival)
    clock = Clock()
    ticks = engine.stats.ticks
    for first, batch in batches(lines):
        report.lines += len(batch)
        posts = Posts()
        add_rows(parse_rows(batch), first, clock, posts, report.bad, arrival)
        report.posts += len(posts.times)
        if on_tick is None:
            engine.add_batch(posts.times, posts.tags, posts.users)
            continue
        for post in zip(posts.times, posts.tags, posts.users, strict=True):
            engine.add_batch(*([value] for value in post))  # type: ignore[arg-type]
            if engine.stats.ticks != ticks:
                ticks = engine.stats.ticks
                on_tick(engine)
    return report


def default_workers() -> int:
    """Parser processes for ``replay_file``: none, so a read-ahead thread parses while this one counts.

    With the compiled reader, parsing a block costs about what counting it does, and the thread shares
    the engine's process without pickling; on two cores it measured faster than worker processes
    (``docs/trends.md``). Pass ``workers`` to use processes (e.g. without the compiled reader on many cores).
    """
    return 0


def replay_file(
    engine: TrendEngine,
    fh: IO[bytes],
    *,
    workers: int | None = None,
    report: ReplayReport | None = None,
    on_bytes: Callable[[int], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ReplayReport:
    """``replay_lines`` at full speed for a binary JSONL stream, parsed by ``workers`` processes.

    The result is the same as ``replay_lines`` on the decoded lines (undecodable bytes are replaced).
    A stream of one block (``BLOCK_BYTES``) is parsed here; ``on_bytes`` gets each block's size. Workers
    are spawned, so a script that calls this must guard its top level with ``if __name__ == "__main__"``.
    """
    report = report or ReplayReport()
    workers = default_workers() if workers is None else workers
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
    too_long = partial(_report_too_long, report, max_line_bytes)
    blocks = _blocks(fh, min(BLOCK_BYTES, max_line_bytes), max_line_bytes, too_long)
    head = [block for _, block in zip(range(2), blocks, strict=False)]
    windows = engine.windows
    renumbering = Renumbering()
    if workers <= 0 or len(head) < 2:
        for posts in _read_ahead(_chain(head, blocks, on_bytes), windows):
            _feed(engine, posts, report, renumbering)
        return report
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        try:
            for posts in _in_order(pool, _chain(head, blocks, on_bytes), windows, 3 * workers):
                _feed(engine, posts, report, renumbering)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return report


def _chain(
    head: list[tuple[int, bytes]], rest: Iterator[tuple[int, bytes]], on_bytes: Callable[[int], None] | None
) -> Iterator[tuple[int, bytes]]:
    for first, block in chain(head, rest):
        if on_bytes is not None:
            on_bytes(len(block))
        yield first, block


def _read_ahead(
    blocks: Iterator[tuple[int, bytes]], windows: tuple[int, int, int]
) -> Iterator[Columns | Posts]:
    """Parsed blocks in file order; a thread parses the next block while the caller counts this one (pyarrow's
    JSON reader and the compiled scanner release the GIL, so both cores work without pickling). The thread
    numbers hashtags in its own ``Spellings``, started afresh when it grows past ``READER_SPELLINGS``."""
    spellings = Spellings()
    with ThreadPoolExecutor(1, thread_name_prefix="freshrank-replay") as pool:
        pending: Future[Columns | Posts] | None = None
        for first, block in blocks:
            if len(spellings) > READER_SPELLINGS:
                spellings = Spellings()
            parsed = pool.submit(parse_columns, block, first, windows, spellings)
            if pending is not None:
                yield pending.result()
            pending = parsed
        if pending is not None:
            yield pending.result()


def _in_order(
    pool: ProcessPoolExecutor, blocks: Iterator[tuple[int, bytes]], windows: tuple[int, int, int], depth: int
) -> Iterator[Columns | Posts]:
    """Parsed blocks in file order, with up to ``depth`` blocks in flight."""
    pending: deque[Future[Columns | Posts]] = deque()
    for first, block in blocks:
        pending.append(pool.submit(parse_columns, block, first, windows))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _feed(
    engine: TrendEngine, posts: Columns | Posts, report: ReplayReport, renumbering: Renumbering
) -> None:
    report.add(posts)
    if isinstance(posts, Columns):
        posts.use(engine.spellings, renumbering)
        engine.add_planned(posts.times, posts.plan, posts.run_counts(), posts)
    else:
        engine.add_batch(np.frombuffer(posts.times, dtype=np.int64), posts.tags, posts.users)


def _report_too_long(report: ReplayReport, limit: int, line: int, size: int) -> None:
    report.too_long(line, size, limit)


def _blocks(
    fh: IO[bytes], size: int, max_line: int, too_long: Callable[[int, int], None]
) -> Iterator[tuple[int, bytes]]:
    """(first line number, whole lines) blocks of about ``size`` bytes; newlines as in text mode. A line
    longer than ``max_line`` (>= ``size``) is read past in chunks, reported to ``too_long(line, size)`` and
    left as a blank line, so line numbers stay right and memory stays bounded."""
    first, rest = 1, b""
    skipped = -1  # bytes of a too-long line read past so far; -1: not inside one
    while chunk := fh.read(size):
        if skipped >= 0:
            end = chunk.find(b"\n")
            if end < 0:
                skipped += len(chunk)
                continue
            too_long(first, skipped + end)
            first, skipped, chunk = first + 1, -1, chunk[end + 1 :]
        data = rest + chunk
        head = data.find(b"\n")
        # Only the first line can be too long: every other one lies inside one chunk (size <= max_line).
        if (head if head >= 0 else len(data)) > max_line:
            if head < 0:
                skipped, rest = len(data), b""
                continue
            too_long(first, head)
            data = b"\n" + data[head + 1 :]
        cut = data.rfind(b"\n") + 1
        if not cut:
            rest = data
            continue
        block, rest = _universal_newlines(data[:cut]), data[cut:]
        yield first, block
        first += block.count(b"\n")
    if skipped >= 0:
        too_long(first, skipped)
    elif rest:
        yield first, _universal_newlines(rest)


def bounded_lines(fh: IO[str], max_chars: int, report: ReplayReport, read: int = 1 << 16) -> Iterator[str]:
    """The lines of a text stream, a line longer than ``max_chars`` read past in pieces and reported (left
    blank, so line numbers stay right); memory stays bounded."""
    number = 0
    while line := fh.readline(max_chars + 1):
        number += 1
        if line.endswith("\n") or len(line) <= max_chars:
            yield line
            continue
        size = len(line)
        while (piece := fh.readline(read)) and not piece.endswith("\n"):
            size += len(piece)
        size += len(piece.rstrip("\n"))
        report.too_long(number, size, max_chars)
        yield "\n"


def _universal_newlines(block: bytes) -> bytes:
    if b"\r" in block:
        return block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return block


def _replay_paced(
    engine: TrendEngine,
    lines: Iterable[str],
    speed: float,
    on_tick: Callable[[TrendEngine], None] | None,
    report: ReplayReport,
    arrival: bool,
) -> ReplayReport:
    pacer = _Pacer(speed)
    ticks = engine.stats.ticks
    for post in posts_from_rows(lines, report, arrival):
        ms = to_epoch_ms(post.created_at)
        pacer.wait(ms)
        engine.add(post)
        if on_tick is not None and engine.stats.ticks != ticks:
            ticks = engine.stats.ticks
            on_tick(engine)
    return report


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


def posts_from_rows(lines: Iterable[str], report: ReplayReport, arrival: bool = False) -> Iterator[Post]:
    """The same parsing, as ``Post`` objects (for callers that want posts rather than an engine)."""
    clock = Clock()
    for number, row in iter_rows(lines, report):
        if row is None:
            continue
        try:
            text = row["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            limit = future_limit_ms()
            now = limit - MAX_FUTURE_SECONDS * 1000
            raw = row.get("created_at", now) if arrival and isinstance(row, dict) else row["created_at"]
            ms = check_time(clock.ms(raw), limit)
            user = row.get("user")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            report.bad(number, reason(exc))
            continue
        report.posts += 1
        yield Post(text=text, created_at=ms / 1000, user=None if user is None else str(user))
