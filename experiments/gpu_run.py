"""One device-machine run: train hybrid NLI candidates, score the catalogue for the visible trends.

Usage: python experiments/gpu_run.py DATA_DIR OUT_DIR [--dry]   (--dry: tiny CPU smoke test)
Writes: base_docs.npy (fp16 catalogue embeddings of the frozen base encoder), cross_scores.npz
(entailment log-odds per model/template/trend over the whole catalogue), heads.npz, metrics.json,
cross.tgz.partN (fp16 weights of the candidate chosen by leave-one-trend-out CV, split to fit transfer
limits).
"""

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from freshrank.classify.labels import label_words
from safetensors.torch import load_file, save_file

from freshrank.classify.cross import TorchPairClassifier
from freshrank.classify.encoder import TorchEncoder
from freshrank.classify.models import _log_odds_entailment
from freshrank.config import Settings
from freshrank.train.lifecycle import load_movies
from freshrank.train.trainer import TrainParams, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
dry = "--dry" in sys.argv
out.mkdir(parents=True, exist_ok=True)
settings = Settings(data_dir=data, state_dir=Path("/tmp/frstate"))
movies = load_movies(settings)
if dry:
    movies = movies[:40]
docs = [m.document for m in movies]
judged = (data / "judgments" / "keyword_judgments.csv").read_text().splitlines()
trends = sorted({r["trend"] for r in csv.DictReader(judged)})
metrics: dict = {"trends": trends, "n_docs": len(docs)}
t = time.time()
base = TorchEncoder().encode(docs, batch_size=256)
metrics["encode_seconds_torch"] = time.time() - t
np.save(out / "base_docs.npy", base.astype(np.float16))
print("encoded", base.shape, metrics["encode_seconds_torch"], flush=True)

TEMPLATES = ["This movie is about {label}.", "This is a {label} movie.", "{label}."]
CANDIDATES = {
    "nli": dict(catalog_pairs=0),
    "nli+catalog": dict(catalog_pairs=20000),
}
scores, heads = {}, {}
for name, extra in CANDIDATES.items():
    params = TrainParams(model_type="hybrid", max_pairs=None, epochs=3, batch_size=32, lr=3e-5, **extra)
    if dry:
        params = params.model_copy(
            update=dict(
                max_pairs=64,
                max_steps=3,
                dev_pairs=30,
                encoder_layers=1,
                catalog_pairs=min(extra["catalog_pairs"], 20),
            )
        )
    result = train(params, Path(f"/tmp/models/{name}"), settings)
    metrics[name] = result.model_dump(mode="json")
    print(name, result.dev_accuracy, result.seconds, flush=True)
    heads[name] = (
        np.load(f"/tmp/models/{name}/head.npz")["weight"],
        np.load(f"/tmp/models/{name}/head.npz")["bias"],
    )
    cross = TorchPairClassifier(Path(f"/tmp/models/{name}/cross"))
    t = time.time()
    for ti, template in enumerate(TEMPLATES):
        for trend in trends:
            hyp = template.format(label=label_words(trend))
            logits = cross.logits([(d, hyp) for d in docs], batch_size=512)
            scores[f"{name}|{ti}|{trend}"] = _log_odds_entailment(logits).astype(np.float16)
    metrics[name]["score_seconds"] = time.time() - t
    print("scored", name, time.time() - t, flush=True)
np.savez(out / "cross_scores.npz", **scores)
np.savez(
    out / "heads.npz",
    **{f"{k}|weight": w for k, (w, b) in heads.items()},
    **{f"{k}|bias": b for k, (w, b) in heads.items()},
)
metrics["templates"] = TEMPLATES

# Return the catalogue-augmented candidate's cross-encoder (fp16) unless it is worse on dev by > 2 points.
chosen = (
    "nli+catalog"
    if metrics["nli+catalog"]["dev_accuracy"] >= metrics["nli"]["dev_accuracy"] - 0.02
    else "nli"
)
metrics["returned"] = chosen

src = Path(f"/tmp/models/{chosen}")
try:
    from freshrank.classify.models import export_onnx

    t = time.time()
    metrics["onnx_export"] = export_onnx(src, quantize=True, nli_path=data / "nli" / "nli_pairs.jsonl.gz")
    metrics["onnx_export"]["seconds"] = time.time() - t
    shutil.rmtree(src / "onnx")
except Exception as exc:  # the figures above matter more than this one
    metrics["onnx_export"] = {"error": repr(exc)}
print("onnx", metrics["onnx_export"], flush=True)
tensors = {k: v.half() for k, v in load_file(str(src / "cross" / "model.safetensors")).items()}
save_file(tensors, str(src / "cross" / "model.safetensors"))
for f in ("loss.csv", "metrics.json", "freshrank-model.json"):
    shutil.copy(src / f, src / "cross" / f"_{f}")
subprocess.run(["tar", "czf", "/tmp/cross.tgz", "-C", str(src), "cross"], check=True)
subprocess.run(["split", "-b", "15m", "-d", "/tmp/cross.tgz", str(out / "cross.tgz.part")], check=True)
(out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
print("done", json.dumps({k: metrics[k]["dev_accuracy"] for k in CANDIDATES}))
