"""A cross-encoder whose lower layers are frozen and cached: CPU steps train only the top layer(s), LOTO-CV.

The base encoder (all-MiniLM-L6-v2) as a 3-way sequence classifier; the token states entering its top
``TOP`` layers are computed once for every training pair (fp16, in memory), so a step is the forward and
backward of ``TOP`` layers + pooler + head only. Pairs: catalogue genres ("This movie is about {genre}.",
entailment vs another genre's contradiction) + NLI train pairs. Ranking: first stage the base cosine of
``{label} movie``; its top K re-scored by the blend of ``combine_signals`` (K x cross weight chosen inside
the folds, including "no re-scoring"), PyTorch fp32 (not the ONNX product path).
Usage: python experiments/cached_cross_cv.py N_CATALOGUE N_NLI EPOCHS [OUT_JSON]
"""

import itertools
import os
import random
import sys
import time

import numpy as np
import torch
from fusion_features import config_table, cosines, load_world, loto, report, words, write, z
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from freshrank.classify.card import LABELS
from freshrank.classify.encoder import base_model_path
from freshrank.classify.models import _log_odds_entailment, combine_signals
from freshrank.train.data import catalog_pairs, load_pairs
from freshrank.train.trainer import nli_loss

TOP, TOKENS, BATCH, LR, SEED = int(os.environ.get("TOP", 1)), 80, 32, 1e-4, 0
TEMPLATE = "This movie is about {label}."
started = time.perf_counter()
n_catalogue, n_nli, epochs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(SEED)
torch.set_num_threads(2)
world = load_world()
pairs = load_pairs([world.settings.nli_path], split="train", max_pairs=n_nli, seed=SEED)
pairs += catalog_pairs(world.movies, TEMPLATE, max_pairs=n_catalogue, seed=SEED)
random.Random(SEED).shuffle(pairs)
path = str(base_model_path())
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(
    path, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)}
)
model.eval()
bert = model.bert
layers = bert.config.num_hidden_layers


def tokens(premises: list[str], hypotheses: list[str]) -> dict:
    return tokenizer(
        premises, hypotheses, truncation="only_first", max_length=TOKENS, padding=True, return_tensors="pt"
    )


def lower(batch: dict) -> torch.Tensor:
    """Token states entering the top TOP layers (no gradient)."""
    with torch.inference_mode():
        out = bert(**batch, output_hidden_states=True)
    return out.hidden_states[layers - TOP]


def upper(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Top TOP layers + pooler + head: the 3-way logits."""
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in bert.encoder.layer[layers - TOP :]:
        out = layer(hidden, attention_mask=ext)
        hidden = out[0] if isinstance(out, tuple) else out
    return model.classifier(model.dropout(bert.pooler(hidden)))


check = tokens([p.premise for p in pairs[:4]], [p.hypothesis for p in pairs[:4]])
with torch.inference_mode():
    gap = float((upper(lower(check), check["attention_mask"]) - model(**check).logits).abs().max())
assert gap < 1e-3, f"cached path differs from the model: {gap}"
cache = []
for start in range(0, len(pairs), 64):
    chunk = pairs[start : start + 64]
    batch = tokens([p.premise for p in chunk], [p.hypothesis for p in chunk])
    cache.append((lower(batch).half(), batch["attention_mask"], torch.tensor([p.label for p in chunk])))
cache_seconds = time.perf_counter() - started
flat = [(h[i : i + 1], m[i : i + 1], y[i : i + 1]) for h, m, y in cache for i in range(len(y))]
trainable = [*bert.encoder.layer[layers - TOP :].parameters(), *bert.pooler.parameters()]
trainable += list(model.classifier.parameters())
for p in model.parameters():
    p.requires_grad_(False)
for p in trainable:
    p.requires_grad_(True)
optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.01)
total = epochs * (len(flat) // BATCH)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: min(1.0, (s + 1) / (0.1 * total)) * max(0.0, (total - s) / (0.9 * total))
)
model.train()
rng = random.Random(SEED)
losses = []
for _epoch in range(epochs):
    order = list(range(len(flat)))
    rng.shuffle(order)
    for b in range(len(flat) // BATCH):
        rows = [flat[i] for i in order[b * BATCH : (b + 1) * BATCH]]
        width = max(int(r[1].sum()) for r in rows)
        hidden = torch.cat([r[0][:, :width] for r in rows]).float()
        mask = torch.cat([r[1][:, :width] for r in rows])
        loss = nli_loss(upper(hidden, mask), torch.cat([r[2] for r in rows]))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
        if len(losses) % 50 == 0:
            print(f"step {len(losses)}/{total} loss {np.mean(losses[-50:]):.3f}", flush=True)
model.eval()
train_seconds = time.perf_counter() - started - cache_seconds


def pair_logits(premises: list[str], hypotheses: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate(
            [
                model(**tokens(premises[i : i + 64], hypotheses[i : i + 64])).logits.numpy()
                for i in range(0, len(premises), 64)
            ]
        )


dev = [p for p in load_pairs([world.settings.nli_path], split="dev", seed=SEED) if p.label < 3][:500]
dev_logits = pair_logits([p.premise for p in dev], [p.hypothesis for p in dev])
dev_accuracy = float((dev_logits.argmax(1) == np.array([p.label for p in dev])).mean())
K_MAX = 100
labels = world.trends
first = {t: z(v) for t, v in cosines(world, labels, "{label} movie").items()}
cross = {}
for t in labels:
    top = np.argsort(-first[t], kind="stable")[:K_MAX]
    cross[t] = dict(
        zip(
            top.tolist(),
            _log_odds_entailment(
                pair_logits([world.texts[i] for i in top], [TEMPLATE.format(label=words(t))] * len(top))
            ).tolist(),
            strict=True,
        )
    )


def rank(config: tuple, trend: str) -> np.ndarray:
    k, weight = config
    return combine_signals(
        {"cosine": first[trend]},
        {"cosine": 1.0, "cross": weight},
        world.docs,
        top_k=k,
        cross_fn=lambda rows: np.array([cross[trend][int(r)] for r in rows], dtype=np.float32),
    ).combined


configs = [(0, 0.0), *itertools.product((10, 20, 50, 100), (0.5, 1.0, 2.0, 1000.0))]
cv, chosen = loto(world, configs, rank)
out = {
    "pairs": len(pairs),
    "top_layers": TOP,
    "tokens": TOKENS,
    "epochs": epochs,
    "steps": len(losses),
    "final_loss": float(np.mean(losses[-50:])),
    "dev_accuracy_500": dev_accuracy,
    "cache_seconds": round(cache_seconds, 1),
    "train_seconds": round(train_seconds, 1),
    "per_config": config_table(world, configs, rank),
    "loto": [round(cv, 3), {k: [list(v[0]), v[1]] for k, v in chosen.items()}],
    "loto measures": report(world, {t: rank(v[0], t) for t, v in chosen.items()}),
    "seconds": round(time.perf_counter() - started, 1),
}
write(out, sys.argv[4] if len(sys.argv) > 4 else None)
