"""Run the Flink trend job (``java/trend-job``, a DataStream job) in a local mini-cluster JVM.

The JVM gets Flink from ``.venv-flink`` (``make flink-venv`` installs PyFlink, whose ``pyflink/lib`` holds
the Flink runtime) and the Kafka connector jar (``scripts/flink-jars.sh``); the job's classes are compiled
once per source version into the download cache (``javac``, JDK 17). It reads a JSON spec
(``FlinkJobSpec``) and prints one line per fired tick; this process turns the rows into trends (labels
included) and writes the store.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshrank.config import Settings
from freshrank.trends.base import Trend, TrendStore
from freshrank.trends.extract import class_table
from freshrank.trends.flink.rows import tag_key, window_trends
from freshrank.trends.flink.spec import Checkpoints, FlinkJobResult, FlinkJobSpec, KafkaTopic
from freshrank.trends.stores import open_trend_store

REPO_ROOT = Path(__file__).resolve().parents[4]
JOB_SOURCES = REPO_ROOT / "java" / "trend-job"
MAIN_CLASS = "freshrank.flink.TrendJob"
MARKER = "FRESHRANK\t"  # the job's result lines on stdout (TrendJob.MARKER)
DEFAULT_JVM_ARGS = "-Xmx1536m"  # the mini-cluster's JVM otherwise takes a quarter of the machine's memory
LOG4J = """rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [flink-job] %-5p %c{1}: %m%n
logger.freshrank.name = freshrank
logger.freshrank.level = INFO
logger.collect.name = org.apache.flink.streaming.api.operators.collect
logger.collect.level = ERROR
"""


class FlinkUnavailable(RuntimeError):
    """The Flink virtualenv, the Kafka connector jar or a server the job needs is missing."""


class FlinkJobFailed(RuntimeError):
    """The job ran and failed; the message carries the end of its log."""


def flink_python() -> Path:
    """The interpreter of ``.venv-flink`` (``$FRESHRANK_FLINK_VENV`` overrides the location)."""
    venv = Path(os.environ.get("FRESHRANK_FLINK_VENV", REPO_ROOT / ".venv-flink"))
    python = venv / "bin" / "python"
    if not python.exists():
        raise FlinkUnavailable(f"no Flink virtualenv at {venv}: run `make flink-venv` first")
    return python


def download_cache() -> Path:
    return Path(os.environ.get("FRESHRANK_DOWNLOAD_CACHE", Path.home() / ".cache" / "freshrank"))


def kafka_connector_jar() -> Path:
    """The flink-sql-connector-kafka jar that ``scripts/flink-jars.sh`` downloaded for this Flink."""
    jars = sorted((download_cache() / "flink").glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise FlinkUnavailable(
            f"no Flink Kafka connector jar in {download_cache() / 'flink'}: run `bash scripts/flink-jars.sh`"
        )
    return jars[-1]


def flink_libs() -> list[Path]:
    """The Flink runtime jars of ``.venv-flink``'s PyFlink (``pyflink/lib``)."""
    python = flink_python()
    jars = sorted(python.parent.parent.glob("lib/python3*/site-packages/pyflink/lib/*.jar"))
    if not jars:
        raise FlinkUnavailable(f"no pyflink/lib jars in {python.parent.parent}: run `make flink-venv` first")
    return jars


def job_jar(libs: list[Path]) -> Path:
    """The job's jar, compiled with ``javac`` once per version of its sources (cached by their digest)."""
    sources = sorted(JOB_SOURCES.rglob("*.java"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(JOB_SOURCES).as_posix().encode() + b"\0" + source.read_bytes())
    jar = download_cache() / "flink" / f"freshrank-trend-job-{digest.hexdigest()[:16]}.jar"
    if jar.exists():
        return jar
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if javac is None or jar_tool is None:
        raise FlinkUnavailable("javac and jar (a JDK 17) are needed to build the Flink trend job")
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="freshrank-javac-") as tmp:
        classpath = os.pathsep.join(str(p) for p in libs)
        build = [javac, "-nowarn", "--release", "17", "-d", tmp, "-cp", classpath, *map(str, sources)]
        compiled = subprocess.run(build, capture_output=True, text=True, check=False)
        if compiled.returncode != 0:
            raise FlinkJobFailed(f"javac failed:\n{compiled.stderr[-4000:]}")
        partial = jar.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([jar_tool, "cf", str(partial), "-C", tmp, "."], check=True)
        partial.replace(jar)
    return jar


def job_classpath() -> list[Path]:
    """Flink's runtime, the Kafka connector and the job's jar."""
    libs = [*flink_libs(), kafka_connector_jar()]
    return [*libs, job_jar(libs)]


def java_command(classpath: list[Path], spec_path: Path, workdir: Path) -> list[str]:
    """The JVM command line of one job run (``$FRESHRANK_FLINK_JVM_ARGS``: heap and other JVM flags)."""
    java = shutil.which("java")
    if java is None:
        raise FlinkUnavailable("no java on PATH: the Flink trend job needs Java 17")
    log4j = workdir / "log4j2.properties"
    log4j.write_text(LOG4J, encoding="utf-8")
    jvm_args = os.environ.get("FRESHRANK_FLINK_JVM_ARGS", DEFAULT_JVM_ARGS).split()
    return [
        java,
        *jvm_args,
        f"-Dlog4j.configurationFile={log4j}",
        "-cp",
        os.pathsep.join(str(p) for p in classpath),
        MAIN_CLASS,
        str(spec_path),
    ]


def check_kafka(topic: KafkaTopic, timeout_s: float = 10.0) -> None:
    """Fail fast, with one clear line, when the broker is down or the topic does not exist."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from freshrank.trends.kafka import bootstrap_options

    try:
        timeout_ms = int(timeout_s * 1000)
        consumer = KafkaConsumer(
            bootstrap_servers=topic.bootstrap,
            request_timeout_ms=timeout_ms + 1,
            **bootstrap_options(KafkaConsumer, timeout_ms),
        )
    except KafkaError as exc:
        raise FlinkUnavailable(f"Kafka at {topic.bootstrap} is unreachable: {exc}") from exc
    try:
        if topic.topic not in consumer.topics():
            raise FlinkUnavailable(f"Kafka topic {topic.topic!r} does not exist at {topic.bootstrap}")
    finally:
        consumer.close()


def stage_input(source: Path, workdir: Path) -> Path:
    """The file as Flink's filesystem source should see it: alone in a directory, plain text.

    The source skips files whose names start with '.' or '_', so the job reads a link with a plain name;
    a ``.gz`` file is decompressed there first.
    """
    if not source.is_file():
        raise FileNotFoundError(f"input not found: {source}")
    staged = workdir / "input" / "posts.jsonl"
    staged.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".gz":
        with gzip.open(source, "rb") as packed, staged.open("wb") as plain:
            shutil.copyfileobj(packed, plain, length=1 << 20)
    else:
        staged.symlink_to(source.resolve())
    return staged


def job_spec(
    source: Path | KafkaTopic,
    store_url: str | None,
    settings: Settings,
    bounded: bool,
    workdir: Path,
    parallelism: int = 1,
) -> FlinkJobSpec:
    table = workdir / "class-table.bin"
    table.write_bytes(class_table())
    spec = FlinkJobSpec(
        trends=settings.trends,
        parallelism=parallelism,
        store_url=store_url,
        ttl_seconds=settings.trends.ttl_seconds,
        blocked_keys=sorted({tag_key(tag) for tag in settings.trends.block_list}),
        helper=[sys.executable, "-m", "freshrank.trends.flink.helper"],
        class_table=str(table),
    )
    if isinstance(source, KafkaTopic):
        jars = [str(kafka_connector_jar())]
        return spec.model_copy(update={"kafka": source, "bounded": bounded, "jars": jars})
    return spec.model_copy(update={"input_path": str(stage_input(source, workdir))})


def run_trend_job(
    source: Path | KafkaTopic,
    store_url: str | None,
    settings: Settings,
    bounded: bool = True,
    timeout_s: float | None = None,
    parallelism: int = 1,
    checkpoints: Checkpoints | None = None,
    on_window: Callable[[dict[str, Any]], None] | None = None,
    stop: threading.Event | None = None,
    store_in_job: bool = False,
) -> FlinkJobResult:
    """Run the Flink trend job on a JSONL file or a Kafka topic; its top N goes to ``store_url`` (if set).

    The job (``java/trend-job``) runs in a local mini-cluster JVM and prints each fired tick's top N; this
    process writes the store (a bounded run: the final window once; a live one: every window). The job's log
    goes to this process's stderr. ``on_window`` sees every window as it fires (``end``, ``posts``, ``last``,
    ``rows``); setting ``stop`` kills the JVM (a crash, for restarts from a checkpoint); ``store_in_job``: the
    job writes the store itself, through the Python helper, as the deployed job does. Raises
    ``FlinkUnavailable`` (nothing to run it with, or a server it needs is down) or ``FlinkJobFailed``.
    """
    classpath = job_classpath()
    if isinstance(source, KafkaTopic):
        check_kafka(source)
    store = open_trend_store(store_url, settings.trends.ttl_seconds) if store_url else None
    if store is not None:
        try:
            store.top(1)  # fail now, not after the whole stream, when the store is unreachable
        except Exception as exc:
            raise FlinkUnavailable(f"the trend store at {store_url} is unreachable: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="freshrank-flink-") as tmp:
        spec = job_spec(source, store_url, settings, bounded, Path(tmp), parallelism)
        if checkpoints is not None:
            spec = spec.model_copy(update=checkpoints.model_dump())
        if store_in_job:
            spec = spec.model_copy(update={"store_in_job": True})
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(spec.model_dump_json(), encoding="utf-8")
        command = java_command(classpath, spec_path, Path(tmp))
        try:
            writer = None if store_in_job else store
            return stream_windows(command, spec, writer, Path(tmp), timeout_s, on_window, stop)
        finally:
            if store is not None:
                store.close()


def trends_of(result: FlinkJobResult) -> list[Trend]:
    return result.to_trends()


def _kill_on(stop: threading.Event, proc: subprocess.Popen[str]) -> None:
    stop.wait()
    proc.kill()


def stream_windows(
    command: list[str],
    spec: FlinkJobSpec,
    store: TrendStore | None,
    workdir: Path,
    timeout_s: float | None,
    on_window: Callable[[dict[str, Any]], None] | None = None,
    stop: threading.Event | None = None,
    store_in_job: bool = False,
) -> FlinkJobResult:
    """Run the JVM, read its windows as they fire; bounded: keep the final one, live: write each one."""
    started = time.monotonic()
    posts, windows, snapshots = 0, 0, 0
    final: dict[str, Any] | None = None
    env = {**os.environ, "TZ": "UTC"}
    with (workdir / "job.log").open("w+", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=workdir, text=True, encoding="utf-8"
        )
        timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
        if timer is not None:
            timer.start()
        if stop is not None:
            threading.Thread(target=_kill_on, args=(stop, proc), daemon=True).start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(MARKER):
                log.write(line)
                continue
            window = json.loads(line[len(MARKER) :])
            posts += window["posts"]
            windows += bool(window["rows"])
            if spec.bounded:
                final = window if window["end"] == window["last"] else final
            elif store is not None:
                store.replace(window_trends(window))
                snapshots += 1
                final = window
            if on_window is not None:
                on_window(window)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer is not None:
            timer.cancel()
        log.seek(0)
        tail = _tail(log.read())
    sys.stderr.write(tail)
    if proc.returncode != 0 and not (stop is not None and stop.is_set()):
        raise FlinkJobFailed(f"the Flink job exited with {proc.returncode}:\n{_tail(tail, 40)}")
    trends = window_trends(final) if final is not None else []
    if store is not None and spec.bounded:
        store.replace(trends)
        snapshots += 1
    return FlinkJobResult(
        trends=FlinkJobResult.encode_trends(trends),
        window_end_ms=final["end"] if final is not None else None,
        posts=posts,
        windows=windows,
        snapshots=snapshots,
        seconds=round(time.monotonic() - started, 3),
        jvm_peak_mb=round(usage.ru_maxrss / 1024, 1),
        jvm_cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
    )


def _tail(text: str, lines: int = 200) -> str:
    kept = [line for line in text.splitlines() if not line.startswith(("\tat ", "        at "))]
    return "\n".join(kept[-lines:]) + "\n"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unavailable"
