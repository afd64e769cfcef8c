"""The shipped champion against the baselines, with leave-one-trend-out CV of its ranking choices (CPU).

Everything goes through the product's code: ``load_model_dir`` (ONNX fp32 base encoder for the first stage,
the LoRA adapter merged and exported to ONNX fp32 for the cross-encoder), ``combine_signals``, and
``freshrank.train.quality`` (ranx) for nDCG@10 (gain 2^g - 1), P@10 and R@100. Baselines on the same path:
BM25 of the hashtag's words (the lexical signal) and the embedding classifier (cosine of ``{label}``).

CV: for each held-out trend, the configuration (shortlist K x cross weight, including "no re-scoring") best
on the other four trends is scored on the held-out one. The template is fixed by construction (the one
the adapter was trained with), as is the first stage (the card's ``cosine_template``).

Usage: FRESHRANK_STATE_DIR=... python experiments/champion_cv.py MODEL_DIR [OUT_JSON]
"""

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.lexical import Bm25Index
from freshrank.classify.models import _log_odds_entailment, _standardise, combine_signals, load_model_dir
from freshrank.config import Settings
from freshrank.labels import hashtag_to_label as label_words
from freshrank.train.lifecycle import load_movies
from freshrank.train.quality import build_queries, leave_one_trend_out, measure, ndcg_at_10, read_judgments

started = time.perf_counter()
model_dir = Path(sys.argv[1])
settings = Settings()
movies = load_movies(settings)
keyword = build_queries(movies, read_judgments(settings.judgments_dir / "keyword_judgments.csv"))
talk = build_queries(movies, read_judgments(settings.judgments_dir / "talk_family_christmas.csv"))
queries = {q.trend: q for q in keyword}
trends = sorted(queries)
texts = [m.document for m in movies]

clf = load_model_dir(model_dir, settings).fit(movies)
embedding = EmbeddingClassifier(cache_dir=settings.cache_dir).fit(movies)
bm25 = Bm25Index(texts)
K_MAX = 100
first: dict[str, np.ndarray] = {}
cross: dict[str, np.ndarray] = {}  # raw entailment log-odds of the first stage's top K_MAX, in that order
baselines: dict[str, dict[str, np.ndarray]] = {"bm25": {}, "embedding": {}}
for trend in sorted({*trends, *(q.trend for q in talk)}):
    words = label_words(trend)
    raw = clf.raw_signals(trend)
    first[trend] = _standardise(raw["cosine"])
    top = np.argsort(-first[trend], kind="stable")[:K_MAX]
    hypothesis = clf.card.template.format(label=clf.label_text(trend))
    cross[trend] = _log_odds_entailment(clf.cross.logits([(texts[i], hypothesis) for i in top]))
    baselines["bm25"][trend] = bm25.score(words)
    baselines["embedding"][trend] = embedding.score([words])[0]
    print(f"{trend}: cross-encoder on {len(top)} pairs, {time.perf_counter() - started:.0f} s", flush=True)


def ranking(config: tuple[int, float], trend: str) -> np.ndarray:
    k, weight = config
    order = np.argsort(-first[trend], kind="stable")[:K_MAX]
    lookup = dict(zip(order.tolist(), cross[trend].tolist(), strict=True))
    weights = {"cosine": 1.0, "cross": weight}
    out = combine_signals(
        {"cosine": first[trend]},
        weights,
        clf._docs,
        top_k=k,
        cross_fn=lambda rows: np.array([lookup[int(r)] for r in rows], dtype=np.float32),
    )
    return out.combined


configs = [(0, 0.0), *itertools.product((10, 20, 50, 100), (0.5, 1.0, 2.0, 1000.0))]
chosen, cv = leave_one_trend_out(
    configs, lambda c, t: ndcg_at_10(ranking(c, t)[queries[t].rows], queries[t].grades), trends
)
card_config = (clf.rerank_top_k, clf.weights.get("cross", 0.0))


def report(scores: dict[str, np.ndarray], query_list: list) -> dict[str, object]:
    result = measure({q.query_id: scores[q.trend][q.rows] for q in query_list}, query_list, movies)
    return {"mean": result.mean, "per_query": {k: v["nDCG@10"] for k, v in result.per_query.items()}}


systems = {
    f"champion (card: K={card_config[0]}, w={card_config[1]:g})": {t: ranking(card_config, t) for t in first},
    "bm25 label words": baselines["bm25"],
    "embedding {label}": baselines["embedding"],
}
out = {
    "model": str(model_dir),
    "version": clf.version,
    "keyword": {name: report(s, keyword) for name, s in systems.items()},
    "talk_family_christmas": {name: report(s, talk) for name, s in systems.items()},
    "loto_cv": {
        "configs": [list(c) for c in configs],
        "chosen": {t: [list(c), v] for t, (c, v) in chosen.items()},
        "mean_ndcg10": cv,
        "mean_all_measures": report({t: ranking(c, t) for t, (c, _) in chosen.items()}, keyword)["mean"],
        "baselines_have_no_choices": True,
    },
    "per_config_mean": {
        str(c): float(
            np.mean([ndcg_at_10(ranking(c, t)[queries[t].rows], queries[t].grades) for t in trends])
        )
        for c in configs
    },
    "seconds": round(time.perf_counter() - started, 1),
}
text = json.dumps(out, indent=2)
print(text)
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text(text + "\n")
