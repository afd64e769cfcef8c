"""Run the PyFlink trend job from the main virtualenv: a subprocess with ``.venv-flink``'s Python.

PyFlink's pins (apache-beam, pandas, protobuf) clash with the main environment, so the job lives in its own
virtualenv (``make flink-venv``) and talks to this side through a JSON spec and a JSON result file.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from freshrank.config import Settings
from freshrank.trends.base import Trend
from freshrank.trends.flink.spec import FlinkJobResult, FlinkJobSpec, KafkaTopic

REPO_ROOT = Path(__file__).resolve().parents[4]
EXIT_UNAVAILABLE = 3
DEFAULT_JVM_ARGS = "-Xmx1536m"  # the mini-cluster's JVM otherwise takes a quarter of the machine's memory


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
    spec = FlinkJobSpec(
        trends=settings.trends,
        parallelism=parallelism,
        store_url=store_url,
        ttl_seconds=settings.trends.ttl_seconds,
        result_path=str(workdir / "result.json"),
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
) -> FlinkJobResult:
    """Run the Flink trend job on a JSONL file or a Kafka topic; its top N goes to ``store_url`` (if set).

    The job's log goes to this process's stderr. Raises ``FlinkUnavailable`` (nothing to run it with, or a
    server it needs is down) or ``FlinkJobFailed``.
    """
    python = flink_python()
    if isinstance(source, KafkaTopic):
        check_kafka(source)
    with tempfile.TemporaryDirectory(prefix="freshrank-flink-") as tmp:
        spec = job_spec(source, store_url, settings, bounded, Path(tmp), parallelism)
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(spec.model_dump_json(), encoding="utf-8")
        log_path = Path(tmp) / "job.log"
        env = {
            **os.environ,
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "JVM_ARGS": os.environ.get("FRESHRANK_FLINK_JVM_ARGS", DEFAULT_JVM_ARGS),
        }
        with log_path.open("w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.run(
                [str(python), "-m", "freshrank.trends.flink.job", str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
                timeout=timeout_s,
                check=False,
            )
            log.seek(0)
            tail = _tail(log.read())
        sys.stderr.write(tail)
        if proc.returncode == EXIT_UNAVAILABLE:
            raise FlinkUnavailable(_last_line(tail))
        if proc.returncode != 0 or not Path(spec.result_path).exists():
            raise FlinkJobFailed(f"the Flink job exited with {proc.returncode}:\n{_tail(tail, 40)}")
        return FlinkJobResult.model_validate_json(Path(spec.result_path).read_text(encoding="utf-8"))


def trends_of(result: FlinkJobResult) -> list[Trend]:
    return result.to_trends()


def _tail(text: str, lines: int = 200) -> str:
    kept = [line for line in text.splitlines() if not line.startswith(("\tat ", "        at "))]
    return "\n".join(kept[-lines:]) + "\n"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unavailable"
