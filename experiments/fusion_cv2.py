"""Saturated lexical boosts and pseudo-relevance feedback over the base encoder's cosine, LOTO-CV.

Usage: python experiments/fusion_cv2.py [OUT_JSON]
"""

import itertools
import sys

import numpy as np
from fusion_features import config_table, cosines, load_world, loto, words, write, z

world = load_world()
labels = world.trends
templates = ("{label}", "{label} movie")
cos = {tpl: cosines(world, labels, tpl) for tpl in templates}
bm25 = {t: world.bm25.score(words(t)) for t in labels}


def lexical(kind: str, trend: str) -> np.ndarray:
    b = bm25[trend]
    if kind == "log":
        return np.log1p(b) / max(float(np.log1p(b).max()), 1e-9)
    if kind == "hit":
        return (b > 0).astype(np.float32)
    return z(b)


def rank(config: tuple, trend: str) -> np.ndarray:
    tpl, kind, w_lex, w_prf = config
    first = z(cos[tpl][trend]) + w_lex * lexical(kind, trend)
    if w_prf:
        top = np.argsort(-first, kind="stable")[:10]
        centroid = world.docs[top].mean(axis=0)
        first = first + w_prf * z(world.docs @ centroid)
    return first


configs = list(
    itertools.product(templates, ("z", "log", "hit"), (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0), (0.0, 0.5, 1.0))
)
out: dict = {"per_config": config_table(world, configs, rank)}
for name, subset in {
    "all": configs,
    "{label} movie": [c for c in configs if c[0] == "{label} movie"],
    "{label} movie, hit, no prf": [
        c for c in configs if c[0] == "{label} movie" and c[1] == "hit" and not c[3]
    ],
    "{label} movie, log, no prf": [
        c for c in configs if c[0] == "{label} movie" and c[1] == "log" and not c[3]
    ],
    "{label} movie, prf only": [c for c in configs if c[0] == "{label} movie" and c[2] == 0.0],
}.items():
    cv, chosen = loto(world, subset, rank)
    out[f"loto {name}"] = [round(cv, 3), {k: [list(v[0]), v[1]] for k, v in chosen.items()}]
write(out, sys.argv[1] if len(sys.argv) > 1 else None)
