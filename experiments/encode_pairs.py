"""Encode NLI train pairs and hashtag tweets once with the base encoder (ONNX fp32) for the head experiments.

Tweets: the text with every ``#tag`` removed is the premise, the hashtag's words (``hashtag_to_label``) the
hypothesis. Tweets that name any judged trend's words (in text or hashtags) are dropped, so no fold ever sees
its held-out topic. Usage: python experiments/encode_pairs.py OUT_NPZ [N_NLI] [N_TWEETS]
"""

import random
import re
import sys

import numpy as np
from fusion_features import load_world, read_jsonl_gz, words

from freshrank.classify.lexical import terms

LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2, "not_entailment": 3}
out_path = sys.argv[1]
n_nli = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
n_tweets = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
world = load_world()
rng = random.Random(0)
nli = read_jsonl_gz(world.settings.nli_path)
train = [r for r in nli if r["split"] == "train"]
rng.shuffle(train)
train = train[:n_nli]
judged = {t for trend in world.trends for t in terms(words(trend))}
tweets = []
for row in read_jsonl_gz(world.settings.tweets_path):
    text = re.sub(r"#\w+", " ", row["text"]).strip()
    tags = sorted({words("#" + h) for h in row["hashtags"] if len(h) > 2})
    toks = set(terms(row["text"])) | {t for tag in tags for t in terms(tag)}
    if len(text) > 20 and tags and not toks & judged:
        tweets.append((text, rng.choice(tags)))
rng.shuffle(tweets)
tweets = tweets[:n_tweets]
tags = sorted({t for _, t in tweets})
print(len(train), len(tweets), len(tags), flush=True)
np.savez(
    out_path,
    nli_u=world.encode([r["premise"] for r in train]),
    nli_v=world.encode([r["hypothesis"] for r in train]),
    nli_y=np.array([LABELS[r["label"]] for r in train]),
    tw_u=world.encode([t for t, _ in tweets]),
    tw_tag=np.array([tags.index(t) for _, t in tweets]),
    tag_v=world.encode(tags),
    tags=np.array(tags),
)
print("done", flush=True)
