"""Shared features for the bi-encoder/fusion experiments: catalogue vectors, BM25, label encodings, CV.

Everything on the product's code: the base encoder in ONNX fp32 (the embedding baseline's cached catalogue
vectors), ``Bm25Index`` over the same documents, ``hashtag_to_label`` for the label words, ranx-free fast
nDCG@10 for CV and ``measure`` (ranx) for the reported figures.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.lexical import Bm25Index
from freshrank.config import Settings
from freshrank.labels import hashtag_to_label
from freshrank.train.lifecycle import load_movies
from freshrank.train.quality import Query, build_queries, measure, ndcg_at_10, read_judgments


@dataclass
class World:
    """Catalogue, judged queries, vectors, BM25 and the base encoder."""

    settings: Settings
    movies: list
    texts: list[str]
    docs: np.ndarray
    bm25: Bm25Index
    embedding: EmbeddingClassifier
    keyword: list[Query]
    talk: list[Query]

    @property
    def trends(self) -> list[str]:
        return sorted({q.trend for q in self.keyword})

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedding.encoder.encode(list(texts))


def load_world() -> World:
    settings = Settings()
    movies = load_movies(settings)
    texts = [m.document for m in movies]
    embedding = EmbeddingClassifier(cache_dir=settings.cache_dir).fit(movies)
    judgments = settings.judgments_dir
    return World(
        settings,
        movies,
        texts,
        embedding._docs,
        Bm25Index(texts),
        embedding,
        build_queries(movies, read_judgments(judgments / "keyword_judgments.csv")),
        build_queries(movies, read_judgments(judgments / "talk_family_christmas.csv")),
    )


def z(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    return np.zeros_like(values) if std < 1e-9 else (values - values.mean()) / std


def words(trend: str) -> str:
    return hashtag_to_label(trend) or trend.lstrip("#")


def per_trend(world: World, scores: dict[str, np.ndarray]) -> dict[str, float]:
    by = {q.trend: q for q in world.keyword}
    return {t: ndcg_at_10(scores[t][by[t].rows], by[t].grades) for t in world.trends}


def loto(
    world: World, configs: Sequence, rank: Callable[[object, str], np.ndarray]
) -> tuple[float, dict[str, object]]:
    """Leave-one-trend-out: each fold picks the config best on the other four, scored on the held-out one."""
    by = {q.trend: q for q in world.keyword}
    table = {
        (i, t): ndcg_at_10(rank(c, t)[by[t].rows], by[t].grades)
        for i, c in enumerate(configs)
        for t in world.trends
    }
    chosen: dict[str, object] = {}
    held_scores = []
    for held in world.trends:
        train = [t for t in world.trends if t != held]
        best = max(range(len(configs)), key=lambda i: (np.mean([table[(i, t)] for t in train]), -i))
        chosen[held] = (configs[best], round(table[(best, held)], 3))
        held_scores.append(table[(best, held)])
    return float(np.mean(held_scores)), chosen


def report(world: World, scores: dict[str, np.ndarray], queries: list[Query] | None = None) -> dict:
    queries = world.keyword if queries is None else queries
    result = measure({q.query_id: scores[q.trend][q.rows] for q in queries}, queries, world.movies)
    return {k: round(v, 3) for k, v in result.mean.items()}


def config_table(world: World, configs: Sequence, rank: Callable[[object, str], np.ndarray]) -> dict:
    """Mean and per-trend nDCG@10 of every configuration on all five trends (the optimistic 'full' view)."""
    table = {}
    for c in configs:
        pt = per_trend(world, {t: rank(c, t) for t in world.trends})
        table[str(c)] = [round(float(np.mean(list(pt.values()))), 3), {k: round(v, 3) for k, v in pt.items()}]
    return table


def write(out: dict, path: str | None) -> None:
    """Print the result and keep it as JSON when a path is given."""
    text = json.dumps(out, indent=1)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def cosines(world: World, labels: Sequence[str], template: str) -> dict[str, np.ndarray]:
    """Cosine of every catalogue movie with ``template`` filled with each label's words."""
    vectors = world.encode([template.format(label=words(t)) for t in labels])
    return dict(zip(labels, vectors @ world.docs.T, strict=True))


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
