"""The compiled scanner and reader (``native/``) agree with the Python extractor and line parser, which
stay the reference: on every shared tweet, on hostile texts and lines, and on random ones."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from freshrank.config import Settings, TrendSettings
from freshrank.trends import engine as engine_module
from freshrank.trends import spellings
from freshrank.trends.engine import TrendEngine
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.simulate import load_texts
from freshrank.trends.sources.columns import Columns, parse_columns
from freshrank.trends.sources.jsonl import parse_block
from freshrank.trends.sources.replay import replay_lines
from freshrank.trends.spellings import Spellings

HOSTILE = [
    "",
    "no tags",
    "#",
    "##double",
    "#a#b",
    "x#y",
    "#1",
    "#_",
    "#1_a",
    "#٣abc",
    "#Straße #STRASSE",
    "#Love #love #LOVE",
    "é#tag",
    "…#tag",
    "#tag…",
    "#tag\u200dmore",
    "#tag\u200cmore",
    "#tag\ufe0f",
    "#e\u0301",
    "a\u0301#tag",
    "#tag\u00a0next",
    "http://x.org#frag #real",
    "éhttp://x.org#frag",
    "_http://x.org#frag",
    "www.x.org/#frag #after",
    "awww.x.org#frag",
    "see https://x.org/a\u2028#after",
    "see https://x.org/a\x1c#after",
    "ftp+ssh.v2-x://host#frag #ok",
    "&#39;#tag &amp; #more",
    "＃全角 #ascii",
    "#" + "a" * 100,
    "#" + "a" * 101,
    "#" + "a" * 101 + " #" + "A" * 101 + " #b",
    "#日本 #tag",
    "#tag #日本",
    "line\n#next\t#tab",
]


def _scan(texts: list[str]) -> list[list[str] | None]:
    """The compiled scanner's hashtags per text (None: left to the Python extractor)."""
    names = Spellings(native=True)
    scanned = names.scan(pa.array(texts, type=pa.string()))
    assert scanned is not None
    counts, ids = scanned
    found: list[list[str] | None] = []
    at = 0
    for count in counts.tolist():
        if count < 0:
            found.append(None)
            continue
        found.append([names.names[i] for i in ids[at : at + count].tolist()])
        at += count
    return found


def _agree(texts: list[str]) -> int:
    """Asserts agreement; returns how many texts the scanner left to Python."""
    left = 0
    for text, tags in zip(texts, _scan(texts), strict=True):
        if tags is None:
            left += 1
        else:
            assert tags == extract_hashtags(text), text
    return left


def test_the_compiled_scanner_is_installed() -> None:
    assert spellings.NATIVE, "build it with `make install` (needs cargo): pip install ./native"


def test_scanner_agrees_on_hostile_texts() -> None:
    _agree(HOSTILE)
    assert _scan(["&amp; #a", "＃x", "#café"]) == [None, None, None]


def test_scanner_agrees_on_every_shared_tweet() -> None:
    texts = load_texts(Settings().tweets_path)
    assert len(texts) > 60_000
    left = _agree(texts)
    assert left < 0.15 * len(texts)  # the scanner does the work; Python only reads the rare odd text


def test_scanner_agrees_on_random_texts() -> None:
    rng = random.Random(7)
    alphabet = list("##＃&;:/w.x_1aZ é日\u0301\ufe0f\u200d\u00a0\u2028\x1c…@-+") + ["://", "www.", "http"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30))) for _ in range(20_000)]
    _agree(texts)


def _line(**row: object) -> str:
    return json.dumps(row, ensure_ascii=False)


READABLE = [
    _line(text="#a #B words", created_at="2027-01-15T08:00:00.250Z", user="u1"),
    _line(text="#a", created_at="2027-01-15T08:00:00Z", user=None),
    _line(text="plain", created_at=1_800_000_000_250),
    _line(text="#s", created_at=1_800_000_000),  # epoch seconds
    _line(text="#neg", created_at=-5),
    _line(text="#leap", created_at="2024-02-29T23:59:59.999Z"),
    _line(text="#old", created_at="0001-01-01T00:00:00Z"),
    '{"text": "#esc\\u00e9 #\\ud83d\\ude00 \\"#q\\" \\\\#b", "created_at": 1800000000000}',
    '{"user": "first", "created_at": 1800000000000, "text": "#order"}',
    '  {"text": "#spaces", "created_at": 1800000000000}  ',
    _line(text="&amp; #ent #café ＃w", created_at=1_800_000_000_000, user="ü"),
]

REFUSED = [
    _line(text="#a", created_at=1_800_000_000_000, extra=1),  # another field: pyarrow or the line parser
    '{"text": "#a", "text": "#b", "created_at": 1800000000000}',
    _line(text="#a", created_at=1_800_000_000_000.5),
    _line(text="#a", created_at="2027-01-15T09:00:00+01:00"),
    _line(text="#a", created_at="2027-02-30T00:00:00Z"),
    _line(text="#a", created_at="0000-01-01T00:00:00Z"),
    _line(text="#a", created_at="2027-01-15T24:00:00Z"),
    _line(text="#a", created_at="1800000000000"),
    _line(text="#a", created_at=99_999_999_999_999_999_999),
    _line(text="#a", created_at=1_800_000_000_000, user=7),
    _line(text=5, created_at=1_800_000_000_000),
    '{"text": "#a\\ud800", "created_at": 1800000000000}',
    "",
    "[1]",
]


def _posts(parsed: Columns) -> list[tuple[int, list[str], str | None]]:
    tags, users = parsed.lists()
    return list(zip(parsed.times.tolist(), tags, users, strict=True))


@pytest.mark.parametrize("line", READABLE)
def test_reader_reads_lines_as_the_line_parser_does(line: str) -> None:
    block = ("\n".join([line, READABLE[0]]) + "\n").encode()
    assert Spellings(native=True).read_block(block) is not None
    parsed = parse_columns(block, 1, (10_000, 0, 180))
    assert isinstance(parsed, Columns)
    expected = parse_block(block, 1)
    assert _posts(parsed) == list(zip(expected.times, expected.tags, expected.users, strict=True))


@pytest.mark.parametrize("line", REFUSED)
def test_reader_leaves_other_lines_to_the_exact_parsers(line: str) -> None:
    names = Spellings(native=True)
    block = ("\n".join([READABLE[0], line, READABLE[0]]) + "\n").encode()
    assert names.read_block(block) is None
    assert len(names) == 0  # a refused block numbers nothing


def test_compaction_renumbers_without_changing_the_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spelling ids of dead tags are dropped between batches; the trends stay those of an engine that
    never compacts."""
    rng = random.Random(3)
    lines = [
        _line(
            text=" ".join(f"#t{rng.randrange(5000)}" for _ in range(3)) + f" #Hot{i % 2} #hot1",
            created_at=1_800_000_000_000 + i * 250,
            user=f"u{i % 40}",
        )
        for i in range(40_000)
    ]
    settings = TrendSettings(
        window_seconds=600, slide_seconds=10, min_count=2, max_tags=300, top_n=20, min_z=-1e9
    )
    plain = TrendEngine(settings)
    replay_lines(plain, lines)
    plain.finish()
    monkeypatch.setattr(engine_module, "COMPACT_MIN", 2000)
    compacted = TrendEngine(settings)
    first = compacted.spellings
    replay_lines(compacted, lines)
    compacted.finish()
    assert compacted.spellings is not first and len(compacted.spellings) < len(plain.spellings)
    assert compacted.stats == plain.stats and compacted.tracked_tags == plain.tracked_tags
    assert [t.to_dict() for t in compacted.top()] == [t.to_dict() for t in plain.top()]
    assert compacted.top() and plain.stats.evicted_tags > 0
