"""The Flink SQL of the trend job: sources, per-slice counts, sliding events, the top N per tick.

Same windows and scores as the embedded engine (see ``trends/engine.py``), at a cost that grows with the
posts plus (ticks × tags that may qualify), not with posts × windows (the former job copied every post
into the 2W/S = 360 HOP windows that contain it):

* event time ``ts`` = the post's epoch ms minus 1 ms, so Flink's half-open slices ``[end − S, end)``
  hold exactly the engine's right-closed buckets ``(t − S, t]``; watermark = ``ts`` − allowed lateness; a
  post whose time cannot be read gets time 0 from the UDF and is filtered out before any window;
* ``TUMBLE`` of size ``S`` counts each (post, tag) row once: per (slice, tag) posts and posts with an
  author, per (slice, tag, author), per (slice, tag, spelling), posts per slice;
* a slice's count is an *event* at its tick (enters the current window), at tick + W (moves to the
  baseline) and at tick + 2W (leaves it); an author's slices cover ``[tick, tick + W)`` and overlapping
  covers are merged (an ``OVER`` on the previous slice of the same (tag, author)), so ``+1``/``−1`` events
  keep the exact number of distinct authors in the current window;
* *probe* rows mark the ticks where a tag may qualify: a slice whose trailing count (``OVER ... RANGE``
  W − S) reaches ``min_count`` is a seed, and only the ticks ``[seed, seed + W)`` can have
  ``c ≥ min_count`` (at a qualifying tick, the tag's last slice is a seed and no more than W back); each
  seed adds only the ticks the previous seed did not cover (``UNNEST(ARRAY_SLICE(...))``);
* SQL keeps a row's event time or drops it, so the job gives these rows their tick as event time through
  a DataStream round trip (``job.bridge_events``, same watermarks); per (tag, tick) the events are
  summed (``TUMBLE`` S), and running sums (``OVER ... ROWS UNBOUNDED PRECEDING``) give ``c``, ``p``,
  distinct authors and authored posts at every probed tick;
* the stream's volume (hashtag uses per window, ``V`` and ``Vp``) is the pseudo-tag ``''`` counted like a
  tag (``slice_volume``); it has a probe at every tick where a real tag has one (its count is at least any
  tag's), so its running sums are joined to each tag's row on the tick (an interval join ``rt = rt``);
* the burst test of ``trends/score.py`` (``score.sql_*`` write its SQL): ``c ≥ min_count``, distinct
  authors ``≥ min_authors`` unless the tag's posts in the window carry no author, ``z ≥ min_z``; a window
  Top-N per tick (score, c desc, tag asc) keeps N rows;
* the display spelling = the most common spelling over ``(t − 2W, t]``, ties to the first in sorted
  order: only the N ranked rows are interval-joined to the per-slice spelling counts and ranked;
* posts per slice ride along the same bridge: the latest slice with posts ends at the first tick at or
  after the last post, the window a bounded run reports (as the engine's ``finish()``).

Everything user-supplied (paths, topics, servers) is quoted as a SQL string literal; numbers are ints.
"""

from __future__ import annotations

from freshrank.config import TrendSettings
from freshrank.trends import score
from freshrank.trends.flink.spec import KafkaTopic

POST_TIME_UDF = "freshrank_post_time"
POST_TAGS_UDF = "freshrank_post_tags"
# The columns of every row the job's query returns (UNION ALL of rankings and per-slide post markers).
RESULT_COLUMNS = (
    "kind",
    "window_end_ms",
    "tag_key",
    "spelling",
    "c",
    "p",
    "authors",
    "authored",
    "score",
    "rn",
    "posts",
    "evidence",
    "expected",
)
# The pseudo-tag whose running sums are the stream's volume (hashtag uses per window): no real tag is empty.
VOLUME_KEY = ""


def literal(value: str) -> str:
    """A SQL string literal (single quotes doubled; control characters refused)."""
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"control characters are not allowed in {value!r}")
    return "'" + value.replace("'", "''") + "'"


def _seconds(value: int) -> str:
    return f"INTERVAL '{int(value)}' SECOND(9)"


def _span(seconds: int) -> str:
    """An interval literal for OVER ranges and join bounds (``SECOND(9)`` is rejected there)."""
    days, rest = divmod(int(seconds), 86400)
    return f"INTERVAL '{days} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}' DAY TO SECOND"


def _columns(lateness_seconds: int) -> str:
    return f"""
  `text` STRING,
  created_at STRING,
  `user` STRING,
  ts AS TO_TIMESTAMP_LTZ({POST_TIME_UDF}(created_at, `text`) - 1, 3),
  WATERMARK FOR ts AS TIMESTAMPADD(SECOND, -{int(lateness_seconds)}, ts)"""


def file_source_ddl(path: str, lateness_seconds: int) -> str:
    """Posts from a JSONL(.gz) file: the bounded filesystem connector (malformed JSON lines are skipped)."""
    return f"""CREATE TEMPORARY TABLE posts ({_columns(lateness_seconds)}
) WITH (
  'connector' = 'filesystem',
  'path' = {literal(path)},
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""


def kafka_source_ddl(kafka: KafkaTopic, lateness_seconds: int, bounded: bool) -> str:
    """Posts from a Kafka topic, from the earliest offset; bounded: up to the latest offsets at start."""
    bounded_option = "\n  'scan.bounded.mode' = 'latest-offset'," if bounded else ""
    return f"""CREATE TEMPORARY TABLE posts ({_columns(lateness_seconds)}
) WITH (
  'connector' = 'kafka',
  'topic' = {literal(kafka.topic)},
  'properties.bootstrap.servers' = {literal(kafka.bootstrap)},
  'properties.group.id' = {literal(kafka.group_id)},
  'scan.startup.mode' = 'earliest-offset',{bounded_option}
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""


def _ms(column: str) -> str:
    """A window bound (TIMESTAMP, UTC) as epoch milliseconds."""
    return f"UNIX_TIMESTAMP(CAST({column} AS STRING)) * 1000"


def _tumble(table: str, column: str, slide: int) -> str:
    return f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR({column}), {_seconds(slide)}))"


def slice_views(settings: TrendSettings) -> list[str]:
    """Per-slice counts, each (post, tag) row aggregated once, and the events that slide the windows.

    ``tag_events`` (bridged to a new event time ``at_ms`` by the job, see ``EVENTS``) holds, per tag:
    ``dc``/``dp``: a slice's count entering the current window at its tick, moving to the baseline window
    ``W`` later and leaving it ``2W`` later; ``da``: posts with an author entering and leaving the current
    window; ``du``: changes of the number of distinct authors in the current window (an author's slices
    cover ``[tick, tick + W)``; overlapping covers are merged, so each author counts once); ``probe``: the
    ticks at which the tag may qualify, i.e. the ticks ``[s, s + W)`` after a slice ``s`` at which the tag's
    count reached ``min_count`` (a later tick with ``c ≥ min_count`` has such a slice: its last slice with
    posts). Every ``probe`` row is emitted once per (tag, tick): a seed adds only the ticks that the
    previous seed of the tag did not cover.
    """
    w, s = int(settings.window_seconds), int(settings.slide_seconds)
    n = w // s
    w_ms, s_ms = w * 1000, s * 1000
    min_count = max(int(settings.min_count), 1)
    offsets = ", ".join(str(k) for k in range(n))
    slice_cols = f"window_time AS rt, {_ms('window_end')} AS tick"
    return [
        """CREATE TEMPORARY VIEW timed_posts AS
SELECT ts, `text`, `user` FROM posts WHERE ts >= TO_TIMESTAMP_LTZ(0, 3)""",
        f"""CREATE TEMPORARY VIEW tagged AS
SELECT ts, T.tag_key, T.spelling, `user` AS author
FROM timed_posts, LATERAL TABLE({POST_TAGS_UDF}(`text`)) AS T(tag_key, spelling)""",
        f"""CREATE TEMPORARY VIEW slice_tags AS
SELECT {slice_cols}, tag_key, COUNT(*) AS cnt, COUNT(author) AS authored
FROM {_tumble("tagged", "ts", s)}
GROUP BY window_start, window_end, window_time, tag_key""",
        f"""CREATE TEMPORARY VIEW slice_volume AS
SELECT {slice_cols}, CAST({literal(VOLUME_KEY)} AS STRING) AS tag_key, COUNT(*) AS cnt,
  COUNT(author) AS authored
FROM {_tumble("tagged", "ts", s)}
GROUP BY window_start, window_end, window_time""",
        """CREATE TEMPORARY VIEW slice_counts AS
SELECT rt, tick, tag_key, cnt, authored FROM slice_tags
UNION ALL
SELECT rt, tick, tag_key, cnt, authored FROM slice_volume""",
        f"""CREATE TEMPORARY VIEW slice_authors AS
SELECT {slice_cols}, tag_key, author
FROM {_tumble("tagged", "ts", s)}
WHERE author IS NOT NULL
GROUP BY window_start, window_end, window_time, tag_key, author""",
        f"""CREATE TEMPORARY VIEW spelling_slices AS
SELECT {_ms("window_end")} AS tick, tag_key, spelling, COUNT(*) AS uses
FROM {_tumble("tagged", "ts", s)}
GROUP BY window_start, window_end, tag_key, spelling""",
        f"""CREATE TEMPORARY VIEW slice_posts AS
SELECT {_ms("window_end")} AS tick, COUNT(*) AS posts
FROM {_tumble("timed_posts", "ts", s)}
GROUP BY window_start, window_end""",
        """CREATE TEMPORARY VIEW author_spans AS
SELECT rt, tick, tag_key, MIN(tick) OVER (
    PARTITION BY tag_key, author ORDER BY rt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_tick
FROM slice_authors""",
        f"""CREATE TEMPORARY VIEW seeds AS
SELECT rt, tick, tag_key FROM (
  SELECT rt, tick, tag_key, SUM(cnt) OVER (
      PARTITION BY tag_key ORDER BY rt RANGE BETWEEN {_span(w - s)} PRECEDING AND CURRENT ROW) AS c
  FROM slice_counts
) WHERE c >= {min_count}""",
        f"""CREATE TEMPORARY VIEW seed_spans AS
SELECT tick, tag_key, CASE WHEN prev_tick = tick OR prev_tick + {w_ms} <= tick THEN 0
                           ELSE CAST((prev_tick + {w_ms} - tick) / {s_ms} AS INT) END AS first_offset
FROM (
  SELECT tick, tag_key, MIN(tick) OVER (
      PARTITION BY tag_key ORDER BY rt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_tick
  FROM seeds
)""",
        f"""CREATE TEMPORARY VIEW tag_event_rows AS
{_row(EVENT, "tick", "cnt", "0", "authored")} FROM slice_counts
UNION ALL
{_row(EVENT, f"tick + {w_ms}", "-cnt", "cnt", "-authored")} FROM slice_counts
UNION ALL
{_row(EVENT, f"tick + {2 * w_ms}", dp="-cnt")} FROM slice_counts
UNION ALL
{_row(EVENT, "tick", du="1")} FROM author_spans WHERE prev_tick = tick OR prev_tick + {w_ms} <= tick
UNION ALL
{_row(EVENT, f"tick + {w_ms}", du="-1")} FROM author_spans
UNION ALL
{_row(EVENT, f"prev_tick + {w_ms}", du="1")} FROM author_spans
WHERE prev_tick < tick AND prev_tick + {w_ms} > tick
UNION ALL
{_row(PROBE, f"tick + k * {s_ms}")}
FROM seed_spans CROSS JOIN UNNEST(ARRAY_SLICE(ARRAY[{offsets}], first_offset + 1, {n})) AS o(k)
UNION ALL
{_row(SPELLING, "tick", uses="uses", spelling="spelling")} FROM spelling_slices
UNION ALL
{_row(MARK, "tick", uses="posts", tag="CAST(NULL AS STRING)")} FROM slice_posts""",
    ]


# Kinds of the bridged rows: window events, probe ticks, spelling counts per slice, posts per slice.
EVENT, PROBE, SPELLING, MARK = 0, 1, 2, 3


def _row(
    kind: int,
    at_ms: str,
    dc: str = "0",
    dp: str = "0",
    da: str = "0",
    du: str = "0",
    uses: str = "0",
    spelling: str = "CAST(NULL AS STRING)",
    tag: str = "tag_key",
) -> str:
    """One SELECT of the bridged rows (every branch of the UNION has the same columns and types)."""
    counts = ", ".join(f"CAST({v} AS BIGINT) AS {k}" for k, v in (("dc", dc), ("dp", dp), ("da", da)))
    return (
        f"SELECT {kind} AS kind, {tag} AS tag_key, CAST({at_ms} AS BIGINT) AS at_ms, {counts}, "
        f"CAST({du} AS INT) AS du, CAST({uses} AS BIGINT) AS uses, {spelling} AS spelling"
    )


# The event rows get their own event time: tick - 1 ms, in Flink's half-open windows the slice ending at it.
EVENTS_TABLE = "tag_events"
EVENTS_SOURCE_VIEW = "tag_event_rows"
EVENTS_TIME = "TO_TIMESTAMP_LTZ(at_ms - 1, 3)"


def ranking_views(settings: TrendSettings) -> list[str]:
    """Running counts per tag at its probe ticks, the top N per tick, and its display spellings."""
    w, s, n = int(settings.window_seconds), int(settings.slide_seconds), int(settings.top_n)
    min_count = max(int(settings.min_count), 1)
    model = score.BurstModel.of(settings)
    return [
        f"""CREATE TEMPORARY VIEW window_events AS
SELECT * FROM {EVENTS_TABLE} WHERE kind <= {PROBE}""",
        f"""CREATE TEMPORARY VIEW tick_deltas AS
SELECT window_time AS rt, tag_key, SUM(dc) AS dc, SUM(dp) AS dp, SUM(du) AS du, SUM(da) AS da,
  MAX(kind) AS probed
FROM {_tumble("window_events", "rt", s)}
GROUP BY window_start, window_end, window_time, tag_key""",
        f"""CREATE TEMPORARY VIEW tag_sums AS
SELECT rt, tag_key, c, p, authors, authored
FROM (
  SELECT rt, tag_key, probed,
    SUM(dc) OVER w AS c, SUM(dp) OVER w AS p, SUM(du) OVER w AS authors, SUM(da) OVER w AS authored
  FROM tick_deltas
  WINDOW w AS (PARTITION BY tag_key ORDER BY rt ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
WHERE probed = {PROBE}""",
        f"""CREATE TEMPORARY VIEW volumes AS
SELECT rt, c AS volume, p AS prev_volume FROM tag_sums WHERE tag_key = {literal(VOLUME_KEY)}""",
        f"""CREATE TEMPORARY VIEW tag_tests AS
SELECT t.rt, t.tag_key, t.c, t.p, t.authors, t.authored,
  {score.sql_evidence(model, "t.c", "t.authors", "t.authored")} AS x,
  {score.sql_expected(model, "t.p", "v.volume", "v.prev_volume")} AS lam
FROM tag_sums t, volumes v
WHERE t.rt = v.rt AND t.tag_key <> {literal(VOLUME_KEY)} AND t.c >= {min_count}
  AND (t.authors >= {int(settings.min_authors)} OR t.authored = 0)""",
        f"""CREATE TEMPORARY VIEW tag_states AS
SELECT * FROM (
  SELECT rt, tag_key, c, p, authors, authored, CAST(x AS BIGINT) AS x, lam, {score.sql_z("x", "lam")} AS score
  FROM tag_tests
) WHERE score >= {model.min_z!r}""",
        f"""CREATE TEMPORARY VIEW top_tags AS
SELECT * FROM (
  SELECT window_start, window_end, window_time AS top_time, tag_key, c, p, authors, authored, x, lam, score,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY score DESC, c DESC, tag_key ASC) AS rn
  FROM {_tumble("tag_states", "rt", s)}
) WHERE rn <= {n}""",
        f"""CREATE TEMPORARY VIEW slice_spellings AS
SELECT rt, tag_key, spelling, uses FROM {EVENTS_TABLE} WHERE kind = {SPELLING}""",
        f"""CREATE TEMPORARY VIEW post_marks AS
SELECT at_ms AS window_end_ms, uses AS posts FROM {EVENTS_TABLE} WHERE kind = {MARK}""",
        f"""CREATE TEMPORARY VIEW top_spellings AS
SELECT t.top_time, t.tag_key, t.c, t.p, t.authors, t.authored, t.x, t.lam, t.score, t.rn, u.spelling, u.uses
FROM top_tags t, slice_spellings u
WHERE t.tag_key = u.tag_key
  AND u.rt BETWEEN t.top_time - {_span(2 * w - s)} AND t.top_time""",
        f"""CREATE TEMPORARY VIEW ranked AS
SELECT * FROM (
  SELECT window_end, tag_key, spelling, c, p, authors, authored, x, lam, score, rn,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end, tag_key
                       ORDER BY uses DESC, spelling ASC) AS spelling_rank
  FROM (
    SELECT window_start, window_end, tag_key, spelling, c, p, authors, authored, x, lam, score, rn,
      SUM(uses) AS uses
    FROM {_tumble("top_spellings", "top_time", s)}
    GROUP BY window_start, window_end, tag_key, spelling, c, p, authors, authored, x, lam, score, rn
  )
) WHERE spelling_rank = 1""",
    ]


QUERY = """
SELECT CAST('top' AS STRING) AS kind, UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000 AS window_end_ms,
  tag_key, spelling, CAST(c AS BIGINT) AS c, CAST(p AS BIGINT) AS p, CAST(authors AS BIGINT) AS authors,
  CAST(authored AS BIGINT) AS authored, score, rn, CAST(NULL AS BIGINT) AS posts,
  CAST(x AS BIGINT) AS evidence, lam AS expected
FROM ranked
UNION ALL
SELECT CAST('mark' AS STRING), window_end_ms, CAST(NULL AS STRING), CAST(NULL AS STRING),
  CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
  CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT), posts, CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE)
FROM post_marks"""


def statements(source_ddl: str, settings: TrendSettings) -> list[str]:
    """Every statement before the event bridge, in order."""
    return [source_ddl, *slice_views(settings)]
