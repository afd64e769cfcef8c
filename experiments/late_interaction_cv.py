"""Late interaction (ColBERT-style MaxSim) over the base encoder's token states, untrained, LOTO-CV.

Every movie's last-layer token states (base encoder, 128 tokens, normalised, fp16, cached in /tmp) and each
label's token states; score = mean over the label's tokens of the best cosine with any of the movie's
tokens. Configurations (template, which label tokens count, blend with the pooled cosine) chosen inside
the folds.
Usage: python experiments/late_interaction_cv.py [OUT_JSON]
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from fusion_features import config_table, cosines, load_world, loto, report, words, write, z
from transformers import AutoModel, AutoTokenizer

from freshrank.classify.encoder import base_model_path

TOKENS, CACHE = 128, Path("/tmp/freshrank-doc-tokens.pt")
started = time.perf_counter()
torch.set_num_threads(2)
world = load_world()
path = str(base_model_path())
tokenizer = AutoTokenizer.from_pretrained(path)
encoder = AutoModel.from_pretrained(path).eval()


def token_states(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = tokenizer(texts, truncation=True, max_length=TOKENS, padding="max_length", return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder(**batch).last_hidden_state
    return torch.nn.functional.normalize(hidden, dim=-1).half(), batch["attention_mask"].bool()


if CACHE.exists():
    doc_states, doc_mask = torch.load(CACHE)
else:
    parts = [token_states(world.texts[i : i + 64]) for i in range(0, len(world.texts), 64)]
    doc_states, doc_mask = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    torch.save((doc_states, doc_mask), CACHE)
print(f"doc token states {tuple(doc_states.shape)} in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def maxsim(label_text: str, keep: str) -> np.ndarray:
    states, mask = token_states([label_text])
    q = states[0][mask[0]].float()
    if keep == "words":
        q = q[1:-1]
    out = np.empty(len(world.texts), dtype=np.float32)
    for start in range(0, len(world.texts), 512):
        d = doc_states[start : start + 512].float()
        sims = torch.einsum("qh,dth->dqt", q, d).masked_fill(~doc_mask[start : start + 512, None, :], -1.0)
        out[start : start + 512] = sims.max(-1).values.mean(-1).numpy()
    return out


templates = ["{label}", "{label} movie", "This movie is about {label}."]
signals = {
    (tpl, keep): {t: maxsim(tpl.format(label=words(t)), keep) for t in world.trends}
    for tpl in templates
    for keep in ("all", "words")
}
pooled = {tpl: cosines(world, world.trends, tpl) for tpl in templates}
configs = [("pooled", tpl, 0.0) for tpl in templates]
configs += [(key, w) for key in signals for w in (0.0, 0.5, 1.0, 2.0)]


def rank(config: tuple, trend: str) -> np.ndarray:
    if config[0] == "pooled":
        return pooled[config[1]][trend]
    (tpl, keep), w = config
    return z(signals[(tpl, keep)][trend]) + w * z(pooled[tpl][trend])


cv, chosen = loto(world, configs, rank)
table = config_table(world, configs, rank)
out = {
    "loto_cv": round(cv, 3),
    "chosen": {k: [str(v[0]), v[1]] for k, v in chosen.items()},
    "table": table,
    "maxsim_label_movie_all": report(world, {t: rank(((templates[1], "all"), 0.0), t) for t in world.trends}),
    "seconds": round(time.perf_counter() - started),
}
write(out, sys.argv[1] if len(sys.argv) > 1 else None)
