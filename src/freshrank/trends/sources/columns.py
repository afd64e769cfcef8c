"""Column-wise parsing of a replay block with pyarrow: what a replay worker does for a block of clean lines.

A block qualifies when every line is a JSON object that pyarrow reads with ``text`` a string, ``user`` a
string or null/missing and ``created_at`` either ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` strings or integer epoch
numbers (milliseconds, or seconds below 1e11) in the whole block, with no blank line and no byte-order mark.
pyarrow is stricter than the line parser (it rejects lone surrogates, duplicate fields, control characters,
numbers out of range; bad UTF-8 in the columns read is checked here), and where it accepts a line both read
the same values; any block that does not qualify, or that has a bad line, goes to ``jsonl.parse_block`` (line
by line, exact line numbers for the bad lines). The result is the same posts either way.

A qualifying block is also planned (``windows.plan_batch``) as if it were the engine's first batch, and its
hashtags are counted per run, so that the main process, which feeds the engine in file order, does no work
per post unless an earlier block reached a later event time (then ``TrendEngine.add_planned`` counts the
block from scratch).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from freshrank.trends.extract import extract_hashtags
from freshrank.trends.sources.jsonl import Posts, parse_block
from freshrank.trends.windows import Plan, plan_batch

_SECONDS_BELOW = 100_000_000_000
_MAX_MS = 2**62
_MIN_ISO_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: Python has no year 0
_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z$"
_BLANK_LINE = re.compile(rb"\n[ \t]*\n")
_SCHEMAS = [
    pa.schema([("text", pa.string()), ("created_at", kind), ("user", pa.string())])
    for kind in (pa.string(), pa.int64())
]


CACHE_TEXTS = 100_000  # texts whose hashtags are remembered (reposts repeat texts verbatim)
CACHE_TEXT_CHARS = 1000
_cache: dict[str, str] = {}


@dataclass
class Columns:
    """The posts of a block as columns, with the block's plan and each run's hashtag counts.

    Hashtags and authors stay in Arrow arrays (cheap to send between processes): each post's hashtags
    joined by NUL (which no hashtag contains), "" for none; they become Python lists only when the engine
    asks (``lists``, ``authors``).
    """

    lines: int
    times: np.ndarray
    joined: pa.Array
    users: pa.Array
    plan: Plan
    counts: list[Counter[str] | None]
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_count: int = 0

    def lists(self) -> tuple[list[list[str]], list[str | None]]:
        return [_split(tags) for tags in self.joined.to_pylist()], self.users.to_pylist()

    def authors(self, positions: np.ndarray) -> Iterable[tuple[str, Sequence[str]]]:
        indices = pa.array(positions)
        tags = map(_split, self.joined.take(indices).to_pylist())
        return zip(self.users.take(indices).to_pylist(), tags, strict=True)


def _split(joined: str) -> list[str]:
    return joined.split("\0") if joined else []


def joined_hashtags(text: str) -> str:
    """``extract_hashtags`` joined by NUL, remembered per text."""
    tags = _cache.get(text)
    if tags is None:
        tags = "\0".join(extract_hashtags(text))
        if len(text) <= CACHE_TEXT_CHARS:
            if len(_cache) >= CACHE_TEXTS:
                _cache.clear()
            _cache[text] = tags
    return tags


def parse_columns(block: bytes, first_line: int, windows: tuple[int, int, int]) -> Columns | Posts:
    """The posts of a block of whole lines starting at line ``first_line``; ``windows`` is
    ``TrendEngine.windows``. ``Columns`` for a block pyarrow reads, else ``parse_block``'s ``Posts``."""
    read = _read(block)
    if read is None:
        return parse_block(block, first_line)
    table, times = read
    texts: list[str] = table.column("text").to_pylist()
    found = list(map(_cache.get, texts))
    for i in [i for i, tags in enumerate(found) if tags is None]:
        found[i] = joined_hashtags(texts[i])
    joined: list[str] = found  # type: ignore[assignment]
    total = len(texts)
    tagged = np.fromiter(map(bool, joined), dtype=bool, count=total)
    users = table.column("user").combine_chunks()
    authored = users.is_valid().to_numpy(zero_copy_only=False)
    slide_ms, lateness_ms, n = windows
    first = int(times[0])
    plan = plan_batch(
        times, tagged, authored, first, (first - lateness_ms) // slide_ms, slide_ms, lateness_ms, n
    )
    counts: list[Counter[str] | None] = []
    for run in plan.runs:
        if run.posts is None:
            counts.append(None)
            continue
        counts.append(Counter("\0".join(map(joined.__getitem__, run.posts.tolist())).split("\0")))
        run.posts = None  # not needed by the main process
    return Columns(total, times, pa.array(joined, type=pa.string()), users, plan, counts)


def _read(block: bytes) -> tuple[pa.Table, np.ndarray] | None:
    """The block's ``text``, ``created_at``, ``user`` columns and times (epoch ms), or None."""
    end = len(block) - block.endswith(b"\n")
    last = block.rfind(b"\n", 0, end) + 1
    if (
        not end
        or block.startswith(b"\xef\xbb\xbf")
        or not block[:1].strip(b" \t\n")  # a blank first line
        or not block[last:end].strip(b" \t")  # a blank last line
        or _BLANK_LINE.search(block, 0, end)
    ):
        return None
    lines = block.count(b"\n", 0, end) + 1
    options = pj.ReadOptions(use_threads=False, block_size=len(block) + 1)
    for schema in _SCHEMAS:
        try:
            table = pj.read_json(
                pa.BufferReader(block),
                read_options=options,
                parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
        except (ValueError, pa.ArrowException):
            continue
        raw = table.column("created_at")
        if table.num_rows != lines or table.column("text").null_count or raw.null_count:
            return None
        try:
            for column in table.columns:  # pyarrow does not check UTF-8 everywhere; the line parser replaces
                column.validate(full=True)
            times = _times(raw)
        except (ValueError, pa.ArrowException):
            return None
        return None if times is None else (table, times)
    return None


def _times(raw: pa.ChunkedArray) -> np.ndarray | None:
    if pa.types.is_string(raw.type):
        if not pc.all(pc.match_substring_regex(raw, _ISO)).as_py():
            return None
        times = pc.cast(raw, pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
        return times if times.min() >= _MIN_ISO_MS else None
    values = raw.to_numpy()
    times = np.where((values > -_SECONDS_BELOW) & (values < _SECONDS_BELOW), values * 1000, values)
    return times if times.min() > -_MAX_MS and times.max() < _MAX_MS else None
