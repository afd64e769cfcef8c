"""A trained label tower over the frozen catalogue vectors (asymmetric dual encoder), LOTO-CV.

The catalogue side stays the base encoder's cached vectors (the embedding baseline's, nothing re-encoded);
only the label side learns: soft prompt tokens appended to the label words (prompt tuning), optionally LoRA
on the label encoder. Supervision is self-made from the catalogue, no topic list: every word of the titles
and overviews with a document frequency in [DF_MIN, DF_MAX] (stop words and anything sharing a 5-letter stem
with a judged trend's words removed) is a pseudo-label whose positives are the movies that mention it; the
loss is multi-positive InfoNCE over the whole catalogue. Configurations (steps) are chosen inside the folds.
Usage: python experiments/label_tower_cv.py [STEPS] [PROMPT_TOKENS] [LR] [OUT_JSON]
"""

import os
import re
import sys
import time
from collections import Counter

import numpy as np
import torch
from fusion_features import load_world, loto, per_trend, report, words, write
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from transformers import AutoModel, AutoTokenizer

from freshrank.classify.encoder import base_model_path

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 600
PROMPT = int(sys.argv[2]) if len(sys.argv) > 2 else 4
LR = float(sys.argv[3]) if len(sys.argv) > 3 else 3e-3
DF_MIN, DF_MAX = int(os.environ.get("DF_MIN", 10)), int(os.environ.get("DF_MAX", 600))
AGREE = int(os.environ.get("AGREE", 0))
BATCH, TAU, SEED, EVAL_EVERY = 64, float(os.environ.get("TAU", 0.05)), 0, 100
started = time.perf_counter()
torch.manual_seed(SEED)
torch.set_num_threads(2)
world = load_world()
docs = torch.from_numpy(world.docs.astype(np.float32))
judged = {w for t in world.trends for w in words(t).lower().split()}


def leaks(word: str) -> bool:
    return any(word[:5] == j[:5] or j in word or word in j for j in judged)


token_sets = [set(re.findall(r"[a-z]{4,}", text.lower())) for text in world.texts]
df = Counter(w for s in token_sets for w in s)
vocab = sorted(
    w for w, n in df.items() if DF_MIN <= n <= DF_MAX and w not in ENGLISH_STOP_WORDS and not leaks(w)
)
index = {w: i for i, w in enumerate(vocab)}
positives = [[] for _ in vocab]
for row, s in enumerate(token_sets):
    for w in s:
        if w in index:
            positives[index[w]].append(row)
if AGREE:
    # Keep only mentions that the base cosine of `{word} movie` also ranks high: "about", not "mentions".
    base = world.encode([f"{w} movie" for w in vocab]) @ world.docs.T
    top = np.argsort(-base, axis=1)[:, :AGREE]
    positives = [sorted(set(p) & set(t.tolist())) for p, t in zip(positives, top, strict=True)]
    keep = [i for i, p in enumerate(positives) if len(p) >= 3]
    vocab, positives = [vocab[i] for i in keep], [positives[i] for i in keep]
print(f"{len(vocab)} pseudo-labels, {sum(map(len, positives))} positives", file=sys.stderr)

path = str(base_model_path())
tokenizer = AutoTokenizer.from_pretrained(path)
encoder = AutoModel.from_pretrained(path).eval()
for p in encoder.parameters():
    p.requires_grad_(False)
table = encoder.get_input_embeddings()
movie_id = tokenizer.convert_tokens_to_ids("movie")
prompt = torch.nn.Parameter(table.weight[movie_id].detach().clone().repeat(PROMPT, 1))
prompt.data[1:] += 0.01 * torch.randn_like(prompt.data[1:])
# Only the first token starts as "movie": the others start near it, so step 0 is close to `{label} movie`.


def embed_labels(labels: list[str]) -> torch.Tensor:
    """Mean-pooled, normalised vectors of '[CLS] label <prompt> [SEP]'."""
    ids = tokenizer(labels, add_special_tokens=False)["input_ids"]
    width = max(map(len, ids)) + PROMPT + 2
    rows, masks = [], []
    for seq in ids:
        head = table(torch.tensor([tokenizer.cls_token_id, *seq]))
        tail = table(torch.tensor([tokenizer.sep_token_id]))
        parts = [head, prompt[:1], tail] if PROMPT_MODE == "one" else [head, prompt, tail]
        row = torch.cat(parts)
        pad = width - row.shape[0]
        masks.append(torch.tensor([1] * row.shape[0] + [0] * pad))
        rows.append(torch.cat([row, torch.zeros(pad, row.shape[1])]))
    mask = torch.stack(masks)
    hidden = encoder(inputs_embeds=torch.stack(rows), attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=-1)


PROMPT_MODE = "one"
with torch.no_grad():
    check = embed_labels([words(t) for t in world.trends]) @ docs.T
    ref = world.encode([f"{words(t)} movie" for t in world.trends]) @ world.docs.T
    print("gap to ONNX `{label} movie`:", float((check.numpy() - ref).__abs__().max()), file=sys.stderr)
PROMPT_MODE = "all"


def scores_now() -> dict[str, np.ndarray]:
    with torch.no_grad():
        vectors = embed_labels([words(t) for t in world.trends])
    return dict(zip(world.trends, (vectors @ docs.T).numpy(), strict=True))


snapshots: dict[int, dict[str, np.ndarray]] = {0: scores_now()}
optimizer = torch.optim.Adam([prompt], lr=LR)
rng = np.random.default_rng(SEED)
log = []
for step in range(1, STEPS + 1):
    batch = rng.choice(len(vocab), size=BATCH, replace=False)
    vectors = embed_labels([vocab[i] for i in batch])
    logits = vectors @ docs.T / TAU
    target = torch.zeros_like(logits, dtype=torch.bool)
    for r, i in enumerate(batch):
        target[r, positives[i]] = True
    loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~target, -1e9), 1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % EVAL_EVERY == 0:
        snapshots[step] = scores_now()
        pt = per_trend(world, snapshots[step])
        log.append((step, round(float(loss), 3), round(float(np.mean(list(pt.values()))), 3)))
        print(
            step,
            log[-1],
            {k: round(v, 3) for k, v in pt.items()},
            f"{time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )

configs = sorted(snapshots)
cv, chosen = loto(world, configs, lambda c, t: snapshots[c][t])
best = max(configs, key=lambda c: np.mean(list(per_trend(world, snapshots[c]).values())))
out = {
    "steps": STEPS,
    "prompt_tokens": PROMPT,
    "lr": LR,
    "tau": TAU,
    "batch": BATCH,
    "pseudo_labels": len(vocab),
    "df": [DF_MIN, DF_MAX],
    "agree": AGREE,
    "log": log,
    "loto_cv": round(cv, 3),
    "chosen": chosen,
    "step0": report(world, snapshots[0]),
    "best_on_all_five": [best, report(world, snapshots[best])],
    "last": report(world, snapshots[configs[-1]]),
    "per_trend_last": {k: round(v, 3) for k, v in per_trend(world, snapshots[configs[-1]]).items()},
    "seconds": round(time.perf_counter() - started),
}
write(out, sys.argv[4] if len(sys.argv) > 4 else None)
