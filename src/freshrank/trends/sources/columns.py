"""Column-wise parsing of a replay block: what the replay's parser (thread or worker) does for clean lines.

Three readers, strictest first: the compiled reader (``Spellings.read_block``, ``native/``) takes a block
whose lines are exactly ``{text, created_at, user?}`` in the forms it knows (see ``native/src/lib.rs``);
pyarrow takes a block whose lines also carry other fields; the line parser takes the rest. For pyarrow,
a block qualifies when every line is a JSON object that pyarrow reads with ``text`` a string, ``user`` a
string or null/missing and ``created_at`` either ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` strings or integer epoch
numbers (milliseconds, or seconds below 1e11) in the whole block, with no blank line and no byte-order mark.
pyarrow is stricter than the line parser (it rejects lone surrogates, duplicate fields, control characters,
numbers out of range; bad UTF-8 in the columns read is checked here), and where it accepts a line both read
the same values; any block that does not qualify, or that has a bad line, goes to ``jsonl.parse_block`` (line
by line, exact line numbers for the bad lines). The result is the same posts either way.

Hashtags come as spelling ids (``spellings.Spellings``; the engine's own when parsed in the engine's
process) from the compiled scanner, or from the Python extractor for the texts the scanner leaves to it.
A qualifying block is also planned (``windows.plan_batch``) as if it were the engine's first batch, so that
the main process, which feeds the engine in file order, does no work per post unless an earlier block
reached a later event time (then ``TrendEngine.add_planned`` counts the block from scratch); each run's
hashtags are counted with array operations (``BlockTags.run_totals``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from freshrank.trends.sources.jsonl import Posts, future_limit_ms, hashtags, parse_block
from freshrank.trends.spellings import Spellings
from freshrank.trends.windows import Plan, Run, plan_batch

_SECONDS_BELOW = 100_000_000_000
_MAX_MS = 2**62
_MIN_ISO_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: Python has no year 0
_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z$"
_SCHEMAS = [
    pa.schema([("text", pa.string()), ("created_at", kind), ("user", pa.string())])
    for kind in (pa.string(), pa.int64())
]


@dataclass
class BlockTags:
    """Each post's hashtags as spelling ids (CSR style): post ``i`` has ``names[j] for j in
    ids[offsets[i]:offsets[i + 1]]``; ``names`` is the ``Spellings.names`` the ids were made with."""

    offsets: np.ndarray  # int64, one more than the posts
    ids: np.ndarray  # int64
    names: list[str]

    def of(self, post: int) -> list[str]:
        return [self.names[j] for j in self.ids[self.offsets[post] : self.offsets[post + 1]].tolist()]

    def lists(self) -> list[list[str]]:
        return [self.of(post) for post in range(len(self.offsets) - 1)]

    def run_totals(self, runs: Sequence[Run]) -> RunTotals:
        """Each run's hashtag counts as arrays, spellings in order of first appearance in the run."""
        run_of_post = np.full(len(self.offsets) - 1, -1, dtype=np.int64)
        for number, run in enumerate(runs):
            if run.posts is not None:
                run_of_post[run.posts] = number
        row_run = np.repeat(run_of_post, np.diff(self.offsets))
        counted = row_run >= 0
        width = max(len(self.names), 1)
        keys, first, totals = np.unique(
            row_run[counted] * width + self.ids[counted], return_index=True, return_counts=True
        )
        order = np.argsort(first)  # runs cover posts in order, so this is run by run, each in post order
        keys, totals = keys[order], totals[order]
        bounds = np.searchsorted(keys // width, np.arange(len(runs) + 1))
        return RunTotals(keys % width, totals, bounds)


@dataclass
class RunTotals:
    """Run ``r`` of a plan counted ``totals[i]`` posts with spelling ``ids[i]`` for ``bounds[r] <= i <
    bounds[r + 1]``."""

    ids: np.ndarray
    totals: np.ndarray
    bounds: np.ndarray

    def counters(self, runs: Sequence[Run]) -> list[Counter[int] | None]:
        """One ``Counter`` per run, in order of first appearance (None: a run without a bucket)."""
        ids, totals, bounds = self.ids.tolist(), self.totals.tolist(), self.bounds.tolist()
        counts: list[Counter[int] | None] = []
        for number, run in enumerate(runs):
            lo, hi = bounds[number], bounds[number + 1]
            counts.append(
                None if run.bucket is None else Counter(dict(zip(ids[lo:hi], totals[lo:hi], strict=True)))
            )
        return counts


@dataclass
class Columns:
    """The posts of a block as columns, with the block's plan.

    Hashtags stay in ``BlockTags`` arrays and authors in an Arrow array (cheap to send between processes);
    they become Python lists only when the engine asks (``lists``, ``authors``).
    """

    lines: int
    times: np.ndarray
    tags: BlockTags
    users: pa.Array
    plan: Plan
    totals: RunTotals
    malformed: list[tuple[int, str]] = field(default_factory=list)
    malformed_count: int = 0

    def lists(self) -> tuple[list[list[str]], list[str | None]]:
        return self.tags.lists(), self.users.to_pylist()

    def authors(self, positions: np.ndarray) -> Iterable[tuple[str, Sequence[str]]]:
        tags = map(self.tags.of, positions.tolist())
        return zip(self.users.take(pa.array(positions)).to_pylist(), tags, strict=True)

    def authors_of(
        self, positions: np.ndarray, spellings: np.ndarray, names: list[str]
    ) -> Iterable[tuple[str, int]] | None:
        """``(author, spelling id)`` for the hashtags among ``spellings`` of the posts at ``positions``."""
        if self.tags.names is not names:
            return None
        offsets = self.tags.offsets
        starts, sizes = offsets[positions], np.diff(offsets)[positions]
        rows = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        ids = self.tags.ids[rows]
        hit = np.isin(ids, spellings)
        posts = np.repeat(positions, sizes)[hit]
        return zip(self.users.take(pa.array(posts)).to_pylist(), ids[hit].tolist(), strict=True)

    def use(self, spellings: Spellings, renumbering: Renumbering) -> None:
        """Renumber the hashtags into ``spellings`` (for a block parsed with other ones)."""
        if self.tags.names is not spellings.names:
            table = renumbering.table(self.tags.names, spellings)
            self.tags.ids, self.totals.ids = table[self.tags.ids], table[self.totals.ids]
            self.tags.names = spellings.names

    def run_counts(self) -> list[Counter[int] | None]:
        """Each run's spelling-id counts, for ``TrendEngine.add_planned``."""
        return self.totals.counters(self.plan.runs)


class Renumbering:
    """Spelling ids of a parser's ``Spellings`` (given by its ``names``) to those of the engine's, learnt as
    the parser learns names: a parser that keeps its ``Spellings`` across blocks costs one lookup per new
    name, not one per name per block."""

    def __init__(self) -> None:
        self._source: list[str] | None = None
        self._target: Spellings | None = None
        self._table = np.zeros(0, dtype=np.int64)

    def table(self, names: list[str], spellings: Spellings) -> np.ndarray:
        if names is not self._source or spellings is not self._target:
            self._source, self._target, self._table = names, spellings, np.zeros(0, dtype=np.int64)
        known, size = len(self._table), len(names)
        if size > known:
            self._table = np.concatenate([self._table, spellings.intern(names[known:size])])
        return self._table


def block_hashtags(texts: pa.StringArray, spellings: Spellings) -> BlockTags:
    """The hashtags of every text, as ``extract_hashtags`` finds them: by the compiled scanner where it is
    installed and certain, else by the Python extractor (remembered per text)."""
    total = len(texts)
    scanned = spellings.scan(texts) if total else None
    found, ids = scanned or (np.full(total, -1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return _with_python(found, ids, lambda rest: texts.take(pa.array(rest)).to_pylist(), spellings)


def _with_python(
    found: np.ndarray, ids: np.ndarray, texts_at: Callable[[np.ndarray], list[str]], spellings: Spellings
) -> BlockTags:
    """``BlockTags`` from the compiled scanner's counts and ids, with the Python extractor reading the
    texts it left (count -1; ``texts_at`` gives them by position)."""
    total = len(found)
    rest = np.flatnonzero(found < 0)
    lists = [hashtags(text) for text in texts_at(rest)] if len(rest) else []
    if lists:
        found = found.copy()
        found[rest] = list(map(len, lists))
    offsets = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(found, out=offsets[1:])
    if lists:
        by_python = np.zeros(total, dtype=bool)
        by_python[rest] = True
        rows = np.repeat(by_python, found)
        merged = np.empty(offsets[-1], dtype=np.int64)
        merged[~rows] = ids
        merged[rows] = spellings.intern(chain.from_iterable(lists))
        ids = merged
    return BlockTags(offsets, ids, spellings.names)


def parse_columns(
    block: bytes, first_line: int, windows: tuple[int, int, int], spellings: Spellings | None = None
) -> Columns | Posts:
    """The posts of a block of whole lines starting at line ``first_line``; ``windows`` is
    ``TrendEngine.windows`` and ``spellings`` numbers the hashtags (the engine's; a fresh one if None).
    ``Columns`` for a block the compiled reader or pyarrow reads, else ``parse_block``'s ``Posts``."""
    spellings = Spellings() if spellings is None else spellings
    native = spellings.read_block(block)
    if native is not None:
        fallback = native.fallback
        times, users = native.times, native.users
        tags = _with_python(native.counts, native.ids, lambda _: fallback, spellings)
    else:
        read = _read(block)
        if read is None:
            return parse_block(block, first_line)
        table, times = read
        tags = block_hashtags(table.column("text").combine_chunks(), spellings)
        users = table.column("user").combine_chunks()
    if len(times) and int(times.max()) > future_limit_ms():
        return parse_block(block, first_line)  # it reports the lines dated too far ahead
    authored = users.is_valid().to_numpy(zero_copy_only=False)
    slide_ms, lateness_ms, n = windows
    first = int(times[0])
    tick = (first - lateness_ms) // slide_ms
    plan = plan_batch(times, np.diff(tags.offsets) > 0, authored, first, tick, slide_ms, lateness_ms, n)
    totals = tags.run_totals(plan.runs)
    for run in plan.runs:
        run.posts = None  # counted: not needed by the engine
    return Columns(len(times), times, tags, users, plan, totals)


def _read(block: bytes) -> tuple[pa.Table, np.ndarray] | None:
    """The block's ``text``, ``created_at``, ``user`` columns and times (epoch ms), or None."""
    end = len(block) - block.endswith(b"\n")
    last = block.rfind(b"\n", 0, end) + 1
    if (
        not end
        or block.startswith(b"\xef\xbb\xbf")
        or not block[:1].strip(b" \t\n")  # a blank first line
        or not block[last:end].strip(b" \t")  # a blank last line
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
        # pyarrow skips blank lines, so a block with one has fewer rows than lines
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
