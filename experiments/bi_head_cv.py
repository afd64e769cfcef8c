"""A trained bi-encoder NLI head over the frozen base encoder (SBERT style), ranked alone and fused, LOTO-CV.

Head: 3-way logits = W [u, v, |u-v|, u*v] + b (the ``head.npz`` layout that ``NliClassifier`` loads), u the
movie (cached catalogue vectors), v the hypothesis. Training sources (``--data``): ``genre`` (each movie vs
"This movie is about {its genre}." = entailment, vs another genre = contradiction: all catalogue movies, no
encoding cost), ``nli`` (NLI train pairs), ``tweets`` (tweet without its hashtags vs its hashtag's words =
entailment, vs another tweet's hashtag = contradiction; tweets naming a judged trend were dropped by
encode_pairs.py). Score = entailment log-odds of ``template``; fused with z(cosine of ``{label} movie``).
Usage: python experiments/bi_head_cv.py PAIRS_NPZ SOURCES [OUT_JSON]   (SOURCES e.g. genre,nli,tweets)
"""

import itertools
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from fusion_features import config_table, cosines, load_world, loto, report, words, write, z

started = time.perf_counter()
pairs = np.load(sys.argv[1]) if sys.argv[1] != "-" else {}
sources = sys.argv[2].split(",")
world = load_world()
rng = np.random.default_rng(0)
TEMPLATE = "This movie is about {label}."


def genre_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    genres = sorted({g for m in world.movies for g in m.genres})
    gv = world.encode([TEMPLATE.format(label=g.lower()) for g in genres])
    us, vs, ys = [], [], []
    for i, m in enumerate(world.movies):
        own = [genres.index(g) for g in m.genres]
        others = [k for k in range(len(genres)) if k not in own]
        for k in own:
            us.append(i), vs.append(k), ys.append(0)
        for k in rng.choice(others, size=min(len(own), len(others)), replace=False):
            us.append(i), vs.append(int(k)), ys.append(2)
    return world.docs[us], gv[vs], np.array(ys)


def tweet_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, tag, tv = pairs["tw_u"], pairs["tw_tag"], pairs["tag_v"]
    other = rng.integers(0, len(tv), size=len(tag))
    other = np.where(other == tag, (other + 1) % len(tv), other)
    return (
        np.concatenate([u, u]),
        np.concatenate([tv[tag], tv[other]]),
        np.r_[np.zeros(len(u)), np.full(len(u), 2)],
    )


parts = []
if "genre" in sources:
    parts.append(genre_pairs())
if "nli" in sources:
    parts.append((pairs["nli_u"], pairs["nli_v"], pairs["nli_y"]))
if "tweets" in sources:
    parts.append(tweet_pairs())
U = torch.tensor(np.concatenate([p[0] for p in parts]), dtype=torch.float32)
V = torch.tensor(np.concatenate([p[1] for p in parts]), dtype=torch.float32)
Y = torch.tensor(np.concatenate([p[2] for p in parts]), dtype=torch.long)
# Balance the sources: each source weighs the same in the loss.
W = torch.tensor(np.concatenate([np.full(len(p[2]), 1.0 / len(p[2])) for p in parts]), dtype=torch.float32)
W = W / W.mean()


def features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cat([u, v, (u - v).abs(), u * v], dim=1)


def loss_fn(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    three = y < 3
    per = torch.zeros(len(y))
    per[three] = -logp[three].gather(1, y[three, None]).squeeze(1)
    per[~three] = -torch.logsumexp(logp[~three][:, 1:], dim=-1)
    return (per * w).mean()


torch.manual_seed(0)
head = torch.nn.Linear(4 * U.shape[1], 3)
opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
EPOCHS = 10
for _epoch in range(EPOCHS):
    for idx in torch.randperm(len(Y)).split(256):
        loss = loss_fn(head(features(U[idx], V[idx])), Y[idx], W[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
train_seconds = time.perf_counter() - started
weight, bias = head.weight.detach().numpy(), head.bias.detach().numpy()


def head_score(docs: np.ndarray, v: np.ndarray) -> np.ndarray:
    d = v.shape[0]
    lg = docs @ weight[:, :d].T + v @ weight[:, d : 2 * d].T + np.abs(docs - v) @ weight[:, 2 * d : 3 * d].T
    lg = lg + (docs * v) @ weight[:, 3 * d :].T + bias
    return lg[:, 0] - np.logaddexp(lg[:, 1], lg[:, 2])


labels = sorted({*world.trends, *(q.trend for q in world.talk)})
cos = cosines(world, labels, "{label} movie")
head_templates = (TEMPLATE, "{label}")
hv = {
    tpl: dict(zip(labels, world.encode([tpl.format(label=words(t)) for t in labels]), strict=True))
    for tpl in head_templates
}
nli = {(tpl, t): head_score(world.docs, hv[tpl][t]) for tpl in head_templates for t in labels}


def rank(config: tuple, trend: str) -> np.ndarray:
    tpl, w = config
    if w == "head":
        return nli[(tpl, trend)]
    return z(cos[trend]) + w * z(nli[(tpl, trend)])


configs = list(itertools.product(head_templates, (0.0, 0.25, 0.5, 1.0, 2.0, "head")))
out: dict = {
    "sources": sources,
    "train_pairs": len(Y),
    "train_seconds": round(train_seconds, 1),
    "per_config": {},
}
out["per_config"] = config_table(world, configs, rank)
for name, subset in {"all": configs, "fixed template": [c for c in configs if c[0] == TEMPLATE]}.items():
    cv, chosen = loto(world, subset, rank)
    out[f"loto {name}"] = [round(cv, 3), {k: [list(v[0]), v[1]] for k, v in chosen.items()}]
    chosen_scores = {t: rank(v[0], t) for t, v in chosen.items()}
    out[f"loto {name} measures"] = report(world, chosen_scores)
write(out, sys.argv[3] if len(sys.argv) > 3 else None)
