"""Untrained fusion of the base encoder's cosine and BM25 of the label words, leave-one-trend-out CV.

The reference for the trained heads (experiments/bi_head_cv.py): what the frozen encoder and the lexical
signal give together before any training. Usage: python experiments/fusion_cv.py [OUT_JSON]
"""

import itertools
import sys
import time

import numpy as np
from fusion_features import config_table, cosines, load_world, loto, report, words, write, z

started = time.perf_counter()
world = load_world()
labels = sorted({*world.trends, *(q.trend for q in world.talk)})
templates = ("{label}", "{label} movie", "A movie about {label}.")
cos = {tpl: cosines(world, labels, tpl) for tpl in templates}
bm25 = {t: world.bm25.score(words(t)) for t in labels}


def rank(config: tuple, trend: str) -> np.ndarray:
    tpl, w_lex, kind = config
    c = cos[tpl][trend]
    if kind == "rrf":
        ranks_c = np.argsort(np.argsort(-c, kind="stable"), kind="stable")
        ranks_l = np.argsort(np.argsort(-bm25[trend], kind="stable"), kind="stable")
        lex = np.where(bm25[trend] > 0, 1.0 / (60 + ranks_l), 0.0)
        return 1.0 / (60 + ranks_c) + w_lex * lex
    return z(c) + w_lex * z(bm25[trend])


configs = list(itertools.product(templates, (0.0, 0.25, 0.5, 1.0, 2.0), ("z", "rrf")))
out: dict = {"per_config": config_table(world, configs, rank)}
for name, subset in {
    "all": configs,
    "z only": [c for c in configs if c[2] == "z"],
    "{label} movie, z": [c for c in configs if c[2] == "z" and c[0] == "{label} movie"],
    "{label} movie, rrf": [c for c in configs if c[2] == "rrf" and c[0] == "{label} movie"],
    "{label}, z": [c for c in configs if c[2] == "z" and c[0] == "{label}"],
}.items():
    cv, chosen = loto(world, subset, rank)
    out[f"loto {name}"] = [round(cv, 3), {k: [list(v[0]), v[1]] for k, v in chosen.items()}]
out["bm25"] = report(world, bm25)
out["seconds"] = round(time.perf_counter() - started, 1)
write(out, sys.argv[1] if len(sys.argv) > 1 else None)
