"""What the launcher (main venv) hands the PyFlink job (``.venv-flink``) and what the job hands back.

Both sides import this module, so it needs only pydantic and freshrank's settings.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from freshrank.config import TrendSettings
from freshrank.trends.base import Trend
from freshrank.trends.stores.codec import decode, encode


class KafkaTopic(BaseModel):
    """A Kafka topic of posts (JSON objects ``{"text", "created_at", "user"?}``, one per message)."""

    topic: str
    bootstrap: str = "127.0.0.1:9092"
    group_id: str = "freshrank-trends"


class Checkpoints(BaseModel):
    """Checkpoint settings of one run: how often, where, and where to resume from."""

    checkpoint_interval_s: int | None = Field(default=None, ge=1)  # None: no checkpoints
    checkpoint_dir: str | None = None  # URI, e.g. file:///flink-data/checkpoints (kept on cancellation)
    restore_from: str | None = None  # a checkpoint (or savepoint) path to resume from


class FlinkJobResult(BaseModel):
    """The final snapshot and what the job did."""

    trends: list[str]  # each trend in the stores' JSON form (codec.encode)
    window_end_ms: int | None  # end of the window the snapshot ranks (None: no posts)
    posts: int  # posts with a readable time, counted by the job
    windows: int  # windows emitted (hop windows with at least one qualifying tag)
    snapshots: int  # snapshots written to the store
    seconds: float  # wall-clock time of the job, start-up included
    jvm_peak_mb: float | None = None  # peak resident memory of the mini-cluster's JVM (Linux /proc)
    jvm_cpu_s: float | None = None  # CPU time of that JVM and the Python UDF workers it started

    def to_trends(self) -> list[Trend]:
        return [decode(raw) for raw in self.trends]

    @staticmethod
    def encode_trends(trends: list[Trend]) -> list[str]:
        return [encode(t) for t in trends]


class FlinkJobSpec(Checkpoints):
    """One run of the trend job: where posts come from, the window settings and where trends go."""

    input_path: str | None = None  # absolute path of a JSONL(.gz) file
    kafka: KafkaTopic | None = None
    bounded: bool = True  # Kafka: stop at the offsets that were latest when the job started
    trends: TrendSettings = Field(default_factory=TrendSettings)
    store_url: str | None = None  # None: only report the trends, write no store
    store_in_job: bool = False  # the job writes the store (a deployed job); else the launcher does
    ttl_seconds: int = 3600
    parallelism: int = Field(default=1, ge=1)
    jars: list[str] = Field(default_factory=list)
    blocked_keys: list[str] = Field(default_factory=list)  # case-folded block list (rows.tag_key)
    helper: list[str] = Field(
        default_factory=list
    )  # Python helper's command (flink/helper.py), spec path added
    class_table: str | None = None  # extract.class_table() written to a file, for the Java extractor
    result_path: str | None = None
