"""The Flink SQL of the trend job: sources, the HOP-window burst score and the window top-N.

Same windows and scores as the embedded engine (see ``trends/engine.py``):

* event time ``ts`` = the post's epoch ms minus 1 ms, so Flink's half-open windows ``[end − 2W, end)``
  hold exactly the engine's right-closed ``(t − 2W, t]``; watermark = ``ts`` − allowed lateness; a post
  whose time cannot be read gets time 0 from the UDF and is filtered out before any window;
* one ``HOP`` window table function of size ``2W`` sliding by ``S``: ``c`` = conditional ``SUM`` over the
  last ``W`` of the window, ``p = COUNT(*) − c``, distinct authors in the last ``W``;
* ``score = (c − p) / SQRT(p + 1)``, ``c ≥ min_count``, distinct authors ``≥ min_authors`` unless the tag's
  posts carry no author; ``ROW_NUMBER()`` per window (score, c desc, tag asc) keeps the top N;
* the display spelling = the tag's most common spelling over the two windows, ties to the first in sorted
  order (the engine's rule; a second HOP aggregation, window-joined to the top N and ranked). Its count
  references the window's bounds, like the score's aggregation, so the planner keeps the window table
  function and aggregates each (window, tag) once ("attached" windows): a plain ``COUNT(*)`` is planned as
  a slice-shared HOP whose every firing merges all 2W/S slice accumulators (360 at 30 min / 10 s), and
  a tag fires 2W/S windows, so slice sharing costs (2W/S)² state reads per tag;
* a ``TUMBLE`` of size ``S`` counts posts per slide: the latest slide with posts ends at the first tick at
  or after the last post, the window a bounded run reports (as the engine's ``finish()``).

Everything user-supplied (paths, topics, servers) is quoted as a SQL string literal; numbers are ints.
"""

from __future__ import annotations

from freshrank.config import TrendSettings
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
)


def literal(value: str) -> str:
    """A SQL string literal (single quotes doubled; control characters refused)."""
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"control characters are not allowed in {value!r}")
    return "'" + value.replace("'", "''") + "'"


def _seconds(value: int) -> str:
    return f"INTERVAL '{int(value)}' SECOND(9)"


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


def views(settings: TrendSettings) -> list[str]:
    """The views the query reads: timed posts, tagged posts, per-tag windows, spellings, the top N."""
    w, s, n = int(settings.window_seconds), int(settings.slide_seconds), int(settings.top_n)
    hop = f"DESCRIPTOR(ts), {_seconds(s)}, {_seconds(2 * w)}"
    current = f"ts >= TIMESTAMPADD(SECOND, -{w}, window_end)"
    end_ms = "UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000"
    return [
        """CREATE TEMPORARY VIEW timed_posts AS
SELECT ts, `text`, `user` FROM posts WHERE ts >= TO_TIMESTAMP_LTZ(0, 3)""",
        f"""CREATE TEMPORARY VIEW tagged AS
SELECT ts, T.tag_key, T.spelling, `user` AS author
FROM timed_posts, LATERAL TABLE({POST_TAGS_UDF}(`text`)) AS T(tag_key, spelling)""",
        f"""CREATE TEMPORARY VIEW tag_windows AS
SELECT window_start, window_end, tag_key,
  SUM(CASE WHEN {current} THEN 1 ELSE 0 END) AS c,
  COUNT(*) AS total,
  COUNT(DISTINCT CASE WHEN {current} THEN author END) AS authors,
  COUNT(author) AS authored
FROM TABLE(HOP(TABLE tagged, {hop}))
GROUP BY window_start, window_end, tag_key""",
        f"""CREATE TEMPORARY VIEW top_tags AS
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY window_start, window_end ORDER BY score DESC, c DESC, tag_key ASC) AS rn
  FROM (
    SELECT window_start, window_end, tag_key, c, total - c AS p, authors, authored,
      (c - (total - c)) / SQRT(CAST(total - c + 1 AS DOUBLE)) AS score
    FROM tag_windows
    WHERE c >= {int(settings.min_count)} AND (authors >= {int(settings.min_authors)} OR authored = 0)
  )
) WHERE rn <= {n}""",
        f"""CREATE TEMPORARY VIEW spelling_windows AS
SELECT window_start, window_end, tag_key, spelling,
  SUM(CASE WHEN ts >= window_start THEN 1 ELSE 0 END) AS uses
FROM TABLE(HOP(TABLE tagged, {hop}))
GROUP BY window_start, window_end, tag_key, spelling""",
        """CREATE TEMPORARY VIEW ranked AS
SELECT * FROM (
  SELECT t.window_start, t.window_end, t.tag_key, s.spelling, t.c, t.p, t.authors, t.authored, t.score,
    t.rn, ROW_NUMBER() OVER (PARTITION BY t.window_start, t.window_end, t.tag_key
                             ORDER BY s.uses DESC, s.spelling ASC) AS spelling_rank
  FROM top_tags t JOIN spelling_windows s
    ON t.window_start = s.window_start AND t.window_end = s.window_end AND t.tag_key = s.tag_key
) WHERE spelling_rank = 1""",
        f"""CREATE TEMPORARY VIEW post_marks AS
SELECT {end_ms} AS window_end_ms, COUNT(*) AS posts
FROM TABLE(TUMBLE(TABLE timed_posts, DESCRIPTOR(ts), {_seconds(s)}))
GROUP BY window_start, window_end""",
    ]


QUERY = """
SELECT CAST('top' AS STRING) AS kind, UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000 AS window_end_ms,
  tag_key, spelling, CAST(c AS BIGINT) AS c, CAST(p AS BIGINT) AS p, authors, authored, score, rn,
  CAST(NULL AS BIGINT) AS posts
FROM ranked
UNION ALL
SELECT CAST('mark' AS STRING), window_end_ms, CAST(NULL AS STRING), CAST(NULL AS STRING),
  CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
  CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT), posts
FROM post_marks"""


def statements(source_ddl: str, settings: TrendSettings) -> list[str]:
    """Every statement before the query, in order."""
    return [source_ddl, *views(settings)]
