"""The PyFlink trend job. Runs inside ``.venv-flink``: ``python -m freshrank.trends.flink.job SPEC.json``.

The windows, scores and top N are Flink SQL (``sql.py``); Python only parses each post's time and
hashtags (stateless UDFs) and, as the sink, writes the top N of each finished window to the trend store.
A bounded run writes one snapshot: the window ending at the first tick at or after the last post, as the
embedded engine's ``finish()`` does. An unbounded run (a live Kafka topic) writes every window as it fires.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import DataTypes, EnvironmentSettings, Schema, StreamTableEnvironment
from pyflink.table.udf import udf, udtf

from freshrank.trends.base import TrendStore
from freshrank.trends.flink import sql
from freshrank.trends.flink.rows import PostTags, PostTime, TopRow, WindowCollector
from freshrank.trends.flink.spec import FlinkJobResult, FlinkJobSpec
from freshrank.trends.stores import open_trend_store

log = logging.getLogger("freshrank.trends.flink")
EXIT_UNAVAILABLE = 3


def table_environment(spec: FlinkJobSpec) -> StreamTableEnvironment:
    """A streaming table environment on a local mini-cluster with the job's UDFs registered."""
    stream_env = StreamExecutionEnvironment.get_execution_environment()
    stream_env.set_parallelism(spec.parallelism)
    env = StreamTableEnvironment.create(stream_env, EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("python.executable", sys.executable)  # the UDF workers run in this same virtualenv
    config.set("python.client.executable", sys.executable)
    config.set("parallelism.default", str(spec.parallelism))
    config.set("table.local-time-zone", "UTC")
    config.set("pipeline.name", "freshrank-trends")
    # Chained operators hand rows over without copying them (the SQL operators never keep input rows).
    config.set("pipeline.object-reuse", "true")
    if spec.parallelism == 1:  # local-global aggregation only adds work when nothing is shuffled
        config.set("table.optimizer.agg-phase-strategy", "ONE_PHASE")
    configure_checkpoints(config, spec)
    if spec.kafka is not None and not spec.bounded:
        # A live topic with fewer partitions than source subtasks: an idle subtask must not hold the
        # watermark (and every window) back forever.
        config.set("table.exec.source.idle-timeout", "5 s")
    if spec.jars:
        config.set("pipeline.jars", ";".join(Path(jar).resolve().as_uri() for jar in spec.jars))
    env.create_temporary_system_function(
        sql.POST_TIME_UDF, udf(PostTime(), result_type=DataTypes.BIGINT(), deterministic=True)
    )
    env.create_temporary_system_function(
        sql.POST_TAGS_UDF,
        udtf(PostTags(spec.trends.block_list), result_types=[DataTypes.STRING(), DataTypes.STRING()]),
    )
    return env


def configure_checkpoints(config: Any, spec: FlinkJobSpec) -> None:
    """Exactly-once checkpoints of the windows' state and the Kafka offsets, and where to resume from."""
    if spec.checkpoint_interval_s:
        config.set("execution.checkpointing.interval", f"{spec.checkpoint_interval_s}s")
        config.set("execution.checkpointing.mode", "EXACTLY_ONCE")
        config.set("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    if spec.checkpoint_dir:
        config.set("execution.checkpointing.dir", spec.checkpoint_dir)
    if spec.restore_from:
        config.set("execution.state-recovery.path", spec.restore_from)


def source_ddl(spec: FlinkJobSpec) -> str:
    lateness = spec.trends.allowed_lateness_seconds
    if spec.kafka is not None:
        return sql.kafka_source_ddl(spec.kafka, lateness, spec.bounded)
    if spec.input_path is None:
        raise ValueError("the job needs input_path or kafka")
    return sql.file_source_ddl(Path(spec.input_path).resolve().as_uri(), lateness)


def bridge_events(env: StreamTableEnvironment) -> None:
    """Give the slide events their own event time (a tick, later than the rows they come from).

    SQL keeps a row's event time or drops it; a round trip through a DataStream lets the events carry
    the ticks at which they apply as event time, with the stream's own watermarks.
    """
    events = env.to_data_stream(env.from_path(sql.EVENTS_SOURCE_VIEW))
    schema = (
        Schema.new_builder()
        .column_by_expression("rt", sql.EVENTS_TIME)
        .watermark("rt", "SOURCE_WATERMARK()")
        .build()
    )
    env.create_temporary_view(sql.EVENTS_TABLE, env.from_data_stream(events, schema))


def _top_row(row: tuple[object, ...]) -> TopRow:
    v = dict(zip(sql.RESULT_COLUMNS, row, strict=True))
    return TopRow(
        window_end_ms=int(v["window_end_ms"]),  # type: ignore[call-overload]
        key=str(v["tag_key"]),
        spelling=str(v["spelling"]),
        count=int(v["c"]),  # type: ignore[call-overload]
        baseline=int(v["p"]),  # type: ignore[call-overload]
        authors=int(v["authors"]),  # type: ignore[call-overload]
        authored=int(v["authored"]),  # type: ignore[call-overload]
        score=float(v["score"]),  # type: ignore[arg-type]
        rank=int(v["rn"]),  # type: ignore[call-overload]
        evidence=int(v["evidence"]),  # type: ignore[call-overload]
        expected=float(v["expected"]),  # type: ignore[arg-type]
    )


def _jvm_pid() -> int | None:
    """The JVM this process started (PyFlink's gateway), found in /proc (Linux); None elsewhere."""
    try:
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        return next((int(pid) for pid in children if "java" in Path(f"/proc/{pid}/comm").read_text()), None)
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its live descendants and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    total = ticks / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += _cpu_seconds(int(child))
            except OSError:
                continue
    return total


def jvm_usage() -> tuple[float | None, float | None]:
    """Peak RSS (MB) and CPU seconds (with the Python UDF workers it runs) of the job's JVM."""
    pid = _jvm_pid()
    if pid is None:
        return None, None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        return round(int(kb) / 1024, 1), round(_cpu_seconds(pid), 2)
    except (OSError, StopIteration, ValueError):
        return None, None


def run(spec: FlinkJobSpec) -> FlinkJobResult:
    """Run the job to the end of its input (an unbounded topic: until interrupted)."""
    started = time.monotonic()
    store: TrendStore | None = None
    if spec.store_url:
        store = open_trend_store(spec.store_url, spec.ttl_seconds)
        store.top(1)  # fail now, not after the whole stream, when the store is unreachable
    env = table_environment(spec)
    for statement in sql.statements(source_ddl(spec), spec.trends):
        env.execute_sql(statement)
    bridge_events(env)
    for statement in sql.ranking_views(spec.trends):
        env.execute_sql(statement)
    collector = WindowCollector(slide_ms=spec.trends.slide_seconds * 1000)
    snapshots = 0
    kind_at, posts_at = sql.RESULT_COLUMNS.index("kind"), sql.RESULT_COLUMNS.index("posts")
    with env.sql_query(sql.QUERY).execute().collect() as results:
        for raw in results:
            row = tuple(raw)
            if row[kind_at] == "mark":
                collector.add_posts(int(row[posts_at]), int(row[1]))
                continue
            finished = collector.add_top(_top_row(row))
            if finished is not None and store is not None and not spec.bounded:
                store.replace([r.to_trend() for r in finished])
                snapshots += 1
    last = collector.flush()
    trends = [r.to_trend() for r in (collector.final() if spec.bounded else last or [])]
    if store is not None and (spec.bounded or last is not None):
        store.replace(trends)
        snapshots += 1
        store.close()
    peak_mb, cpu_s = jvm_usage()
    return FlinkJobResult(
        trends=FlinkJobResult.encode_trends(trends),
        window_end_ms=collector.final_end_ms,
        posts=collector.posts,
        windows=collector.windows,
        snapshots=snapshots,
        seconds=round(time.monotonic() - started, 3),
        jvm_peak_mb=peak_mb,
        jvm_cpu_s=cpu_s,
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="[flink-job] %(message)s", stream=sys.stderr)
    if len(argv) != 1:
        print("usage: python -m freshrank.trends.flink.job SPEC.json", file=sys.stderr)
        return 2
    spec = FlinkJobSpec.model_validate_json(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        result = run(spec)
    except (redis.RedisError, ConnectionError, OSError) as exc:
        log.error("unavailable: %s", exc)
        return EXIT_UNAVAILABLE
    Path(spec.result_path).write_text(result.model_dump_json(), encoding="utf-8")
    log.info(
        "%d posts, %d windows, %d snapshots in %.1f s",
        result.posts,
        result.windows,
        result.snapshots,
        result.seconds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
