"""A learned similarity over the frozen base encoder: cos(u + A u, v), A low-rank, trained contrastively.

In-batch InfoNCE on tweets (tweet without hashtags -> its hashtag's words; judged-trend tweets dropped by
encode_pairs.py) and catalogue genres (movie -> "{genre} movie" among all genres). Ranking: the learned
cosine of ``{label} movie``, alone and fused with the base cosine (weight chosen inside the folds).
Usage: python experiments/contrastive_head_cv.py PAIRS_NPZ RANK [OUT_JSON]
"""

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from fusion_features import config_table, load_world, loto, report, words, write, z

started = time.perf_counter()
pairs = np.load(sys.argv[1])
rank_r = int(sys.argv[2])
world = load_world()
torch.manual_seed(0)
genres = sorted({g for m in world.movies for g in m.genres})
gv = torch.tensor(world.encode([f"{g.lower()} movie" for g in genres]))
docs = torch.tensor(world.docs)
own = torch.zeros(len(world.movies), len(genres))
for i, m in enumerate(world.movies):
    for g in m.genres:
        own[i, genres.index(g)] = 1
tw_u, tag_v = torch.tensor(pairs["tw_u"]), torch.tensor(pairs["tag_v"])
tw_tag = torch.tensor(pairs["tw_tag"])
A = torch.nn.Parameter(torch.zeros(384, rank_r))
B = torch.nn.Parameter(torch.randn(rank_r, 384) * 0.01)
scale = 20.0
opt = torch.optim.AdamW([A, B], lr=1e-3, weight_decay=1e-3)


def embed(u: torch.Tensor) -> torch.Tensor:
    return F.normalize(u + (u @ A) @ B, dim=-1)


for _step in range(600):
    idx = torch.randint(0, len(tw_u), (256,))
    tags = tw_tag[idx]
    logits = scale * embed(tw_u[idx]) @ tag_v[tags].T
    same = tags[:, None] == tags[None, :]
    logits = logits.masked_fill(same & ~torch.eye(len(idx), dtype=torch.bool), -1e4)
    loss_t = F.cross_entropy(logits, torch.arange(len(idx)))
    midx = torch.randint(0, len(docs), (256,))
    keep = own[midx].sum(1) > 0
    glog = scale * embed(docs[midx][keep]) @ gv.T
    target = own[midx][keep] / own[midx][keep].sum(1, keepdim=True)
    loss_g = -(target * F.log_softmax(glog, dim=-1)).sum(1).mean()
    loss = loss_t + loss_g
    opt.zero_grad()
    loss.backward()
    opt.step()
seconds = time.perf_counter() - started
with torch.no_grad():
    learned_docs = embed(docs).numpy()
labels = world.trends
qv = world.encode([f"{words(t)} movie" for t in labels])
base = dict(zip(labels, qv @ world.docs.T, strict=True))
learned = dict(zip(labels, qv @ learned_docs.T, strict=True))


def rank(w: object, trend: str) -> np.ndarray:
    if w == "learned":
        return learned[trend]
    return z(base[trend]) + float(w) * z(learned[trend])


configs = [0.0, 0.5, 1.0, 2.0, "learned"]
out: dict = {"rank": rank_r, "final_loss": float(loss), "train_seconds": round(seconds, 1), "per_config": {}}
out["per_config"] = config_table(world, configs, rank)
cv, chosen = loto(world, configs, rank)
out["loto"] = [round(cv, 3), {k: [v[0], v[1]] for k, v in chosen.items()}]
out["loto measures"] = report(world, {t: rank(v[0], t) for t, v in chosen.items()})
write(out, sys.argv[3] if len(sys.argv) > 3 else None)
