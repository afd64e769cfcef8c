"""The crowd a judged trend is evaluated in: the trending set a replay of a stream produces."""

from __future__ import annotations

import gzip
from pathlib import Path

from freshrank.config import Settings, TrendSettings
from freshrank.trends.base import Trend

DEMO = "demo"


def replay_crowd(path: Path, settings: TrendSettings) -> list[Trend]:
    """The final top N of the embedded engine over the JSONL(.gz) stream at ``path`` (posts without a time
    get their arrival time)."""
    from freshrank.trends.engine import TrendEngine
    from freshrank.trends.sources.replay import replay_lines

    engine = TrendEngine(settings)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        replay_lines(engine, fh, arrival=True)
    engine.finish()
    return engine.top()


def demo_crowd(settings: Settings) -> list[Trend]:
    """The trends at the end of the demo's stream: the shared tweets over two hours, the always-popular
    #love and the #christmas burst (``trends.simulate.Scenario`` defaults, deterministic)."""
    from freshrank.trends.engine import TrendEngine
    from freshrank.trends.simulate import Scenario, load_texts

    engine = TrendEngine(settings.trends)
    engine.add_many(Scenario().posts(load_texts(settings.tweets_path)))
    engine.finish()
    return engine.top()


def open_crowd(settings: Settings, spec: str) -> list[Trend] | None:
    """``"demo"``, a stream path, or ``""`` (no crowd: None)."""
    if not spec:
        return None
    if spec == DEMO and not settings.tweets_path.is_file():
        raise FileNotFoundError(
            f"the crowd 'demo' is made from the shared tweets, not found at {settings.tweets_path} "
            "(set FRESHRANK_DATA_DIR, or lifecycle.crowd = '' to rank in isolation)"
        )
    return demo_crowd(settings) if spec == DEMO else replay_crowd(Path(spec), settings.trends)
