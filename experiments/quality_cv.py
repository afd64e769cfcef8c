"""Choose signal weights/templates by leave-one-trend-out CV on the visible judgments (CPU, minutes).

Inputs: the device run's files (experiments/gpu_run.py): base_docs.npy, cross_scores.npz, heads.npz.
Usage: python experiments/quality_cv.py GPU_OUT_DIR [RESULT_JSON]
"""

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from freshrank.classify.labels import label_words

from freshrank.classify.encoder import TorchEncoder
from freshrank.classify.lexical import Bm25Index
from freshrank.classify.models import NliHead, _log_odds_entailment, _standardise, combine_signals
from freshrank.config import Settings
from freshrank.train.lifecycle import load_movies
from freshrank.train.quality import build_queries, leave_one_trend_out, ndcg_at_10, read_judgments

gpu = Path(sys.argv[1])
settings = Settings()
movies = load_movies(settings)
docs = np.load(gpu / "base_docs.npy").astype(np.float32)
docs /= np.linalg.norm(docs, axis=1, keepdims=True)
assert len(docs) == len(movies)
cross = dict(np.load(gpu / "cross_scores.npz"))
heads_file = np.load(gpu / "heads.npz")
meta = json.loads((gpu / "metrics.json").read_text())
queries = {
    q.trend: q
    for q in build_queries(movies, read_judgments(settings.judgments_dir / "keyword_judgments.csv"))
}
trends = sorted(queries)
encoder = TorchEncoder()
bm25 = Bm25Index([m.document for m in movies])

COS_TEMPLATES = ["{label}", "{label} movie", "A movie about {label}.", "This movie is about {label}."]
NLI_TEMPLATE = "This movie is about {label}."
signals: dict[tuple[str, str], np.ndarray] = {}
for trend in trends:
    words = label_words(trend)
    vecs = encoder.encode([t.format(label=words) for t in COS_TEMPLATES])
    for t, v in zip(COS_TEMPLATES, vecs, strict=True):
        signals[(f"cos:{t}", trend)] = _standardise(docs @ v)
    signals[("lexical", trend)] = _standardise(bm25.score(words))
    hyp = encoder.encode([NLI_TEMPLATE.format(label=words)])[0]
    for model in ("nli", "nli+catalog"):
        head = NliHead(heads_file[f"{model}|weight"], heads_file[f"{model}|bias"])
        signals[(f"head:{model}", trend)] = _standardise(_log_odds_entailment(head.logits(docs, hyp)))
    for key, values in cross.items():
        model, ti, tr = key.split("|")
        if tr == trend:
            signals[(f"cross:{model}:{ti}", trend)] = values.astype(np.float32)


def evaluate(config: tuple, trend: str) -> float:
    cos_t, w_lex, (head, w_nli), w_prf, (cross_key, w_cross), top_k = config
    standard = {"cosine": signals[(f"cos:{cos_t}", trend)], "lexical": signals[("lexical", trend)]}
    if head:
        standard["nli"] = signals[(f"head:{head}", trend)]
    weights = {"cosine": 1.0, "lexical": w_lex, "nli": w_nli, "prf": w_prf, "cross": w_cross}
    cross_fn = (lambda rows: signals[(cross_key, trend)][rows]) if cross_key else None
    out = combine_signals(standard, weights, docs, prf_docs=10, top_k=top_k, cross_fn=cross_fn)
    q = queries[trend]
    return ndcg_at_10(out.combined[q.rows], q.grades)


cross_keys = sorted({k.split("|")[0] + ":" + k.split("|")[1] for k in cross})
RERANK = "--rerank" in sys.argv  # second, focused grid: first-stage template x cross template/weight/K
grid = (
    list(
        itertools.product(
            COS_TEMPLATES,
            [0.0],
            [(None, 0.0)],
            [0.0],
            [(f"cross:nli+catalog:{i}", w) for i in range(3) for w in (1.0, 2.0, 4.0, 8.0, 1000.0)],
            [50, 100, 300],
        )
    )
    if RERANK
    else list(
        itertools.product(
            COS_TEMPLATES,
            [0.0, 0.25, 0.5, 1.0, 2.0],
            [(None, 0.0), ("nli", 0.5), ("nli+catalog", 0.5), ("nli+catalog", 1.0)],
            [0.0, 0.5, 1.0],
            [(None, 0.0)] + [(f"cross:{k}", w) for k in cross_keys for w in (0.5, 1.0, 2.0)],
            [100],
        )
    )
)
t0 = time.time()
names = [json.dumps(c) for c in grid]
table = {}
for c, name in zip(grid, names, strict=True):
    for trend in trends:
        table[(name, trend)] = evaluate(c, trend)
print(f"{len(grid)} configs in {time.time() - t0:.0f}s", flush=True)


def report(label: str, candidates: list[str]) -> dict:
    chosen, cv = leave_one_trend_out(candidates, lambda c, t: table[(c, t)], trends)
    full_best = max(candidates, key=lambda c: np.mean([table[(c, t)] for t in trends]))
    row = {
        "family": label,
        "configs": len(candidates),
        "cv_ndcg10": round(cv, 4),
        "cv_per_trend": {t: [json.loads(c), round(v, 4)] for t, (c, v) in chosen.items()},
        "chosen_on_all_five": json.loads(full_best),
        "full_ndcg10_of_chosen": round(float(np.mean([table[(full_best, t)] for t in trends])), 4),
        "full_per_trend": {t: round(table[(full_best, t)], 4) for t in trends},
    }
    print(json.dumps({k: row[k] for k in ("family", "configs", "cv_ndcg10", "full_ndcg10_of_chosen")}))
    return row


def where(pred) -> list[str]:
    return [n for c, n in zip(grid, names, strict=True) if pred(c)]


# Single-signal references (no selection).
for label, pred in (
    []
    if RERANK
    else [
        ("cosine {label}", lambda c: c == ("{label}", 0.0, (None, 0.0), 0.0, (None, 0.0), 100)),
    ]
):
    cands = where(pred)
    print(
        label,
        {t: round(table[(cands[0], t)], 4) for t in trends},
        round(np.mean([table[(cands[0], t)] for t in trends]), 4),
    )
lex_only = {t: ndcg_at_10(signals[("lexical", t)][queries[t].rows], queries[t].grades) for t in trends}
print(
    "lexical only", {t: round(v, 4) for t, v in lex_only.items()}, round(np.mean(list(lex_only.values())), 4)
)
for model in ("nli", "nli+catalog"):
    for ti in range(3):
        full = {
            t: ndcg_at_10(signals[(f"cross:{model}:{ti}", t)][queries[t].rows], queries[t].grades)
            for t in trends
        }
        print(
            f"cross {model} template {meta['templates'][ti]!r} whole catalogue",
            round(np.mean(list(full.values())), 4),
        )
    full = {t: ndcg_at_10(signals[(f"head:{model}", t)][queries[t].rows], queries[t].grades) for t in trends}
    print(f"bi-encoder head {model} whole catalogue", round(np.mean(list(full.values())), 4))

families = (
    {
        "cosine + cross re-score: template, weight, K by CV": names,
        "cosine {label} movie + cross {label}., K=100, w by CV": where(
            lambda c: c[0] == "{label} movie" and c[4][0].endswith(":2") and c[5] == 100
        ),
        "cosine + cross 'This movie is about {label}.', w, K by CV": where(lambda c: c[4][0].endswith(":0")),
    }
    if RERANK
    else {
        "cosine (template by CV)": where(
            lambda c: c[1] == 0 and c[2][0] is None and c[3] == 0 and c[4][0] is None
        ),
        "cosine + lexical": where(lambda c: c[2][0] is None and c[3] == 0 and c[4][0] is None),
        "cosine + lexical + prf": where(lambda c: c[2][0] is None and c[4][0] is None),
        "cosine + lexical + bi-encoder head": where(lambda c: c[3] == 0 and c[4][0] is None),
        "cosine + lexical + prf + head": where(lambda c: c[4][0] is None),
        "cosine + cross re-score": where(lambda c: c[1] == 0 and c[2][0] is None and c[3] == 0),
        "cosine + lexical + cross": where(lambda c: c[2][0] is None and c[3] == 0),
        "cosine + lexical + prf + cross": where(lambda c: c[2][0] is None),
        "all signals": names,
    }
)
rows = [report(k, v) for k, v in families.items()]
if len(sys.argv) > 2 and not sys.argv[2].startswith("--"):
    Path(sys.argv[2]).write_text(json.dumps(rows, indent=2))
