"""Shared helpers for the lifecycle tests: a tiny data directory and a tiny trained model."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from freshrank.config import Settings
from tests.conftest import SHARED_DATA, SMALL_MOVIES

JUDGMENTS = [
    ("#christmas", "", 1, 1),
    ("#christmas", "", 2, 1),
    ("#christmas", "", 8, 1),
    ("#dinosaurs", "", 3, 1),
    ("#zombies", "", 4, 1),
    ("#halloween", "", 6, 1),
    ("#christmas", "Family", 8, 3),
    ("#christmas", "Family", 2, 2),
]


def make_data_dir(root: Path) -> Path:
    """movies.jsonl.gz (8 movies), judgments/keyword_judgments.csv, and the shared NLI pairs and tweets
    (linked; the tweets make the gate's crowd, ``lifecycle.crowd = "demo"``)."""
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "movies.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in SMALL_MOVIES:
            fh.write(json.dumps(row) + "\n")
    (root / "judgments").mkdir(exist_ok=True)
    lines = ["trend,genre,doc_id,grade"] + [f"{t},{g},{d},{r}" for t, g, d, r in JUDGMENTS]
    (root / "judgments" / "keyword_judgments.csv").write_text("\n".join(lines) + "\n")
    (root / "nli").mkdir(exist_ok=True)
    link = root / "nli" / "nli_pairs.jsonl.gz"
    if not link.exists():
        link.symlink_to(SHARED_DATA / "nli" / "nli_pairs.jsonl.gz")
    (root / "tweets").mkdir(exist_ok=True)
    tweets = root / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz"
    if not tweets.exists():
        tweets.symlink_to(SHARED_DATA / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz")
    return root


def tiny_settings(tmp: Path) -> Settings:
    return Settings(data_dir=make_data_dir(tmp / "data"), state_dir=tmp / "state")


TINY_TRAIN = {
    "model_type": "bi-encoder",
    "max_pairs": 48,
    "encoder_layers": 1,
    "dev_pairs": 24,
    "head_epochs": 2,
}


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "FRESHRANK_DATA_DIR": str(settings.data_dir),
        "FRESHRANK_STATE_DIR": str(settings.state_dir),
    }
