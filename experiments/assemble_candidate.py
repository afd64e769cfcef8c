"""Rebuild a model directory from the device run's files (fp16 cross-encoder chunks -> fp32 model dir).

Usage: python experiments/assemble_candidate.py GPU_OUT_DIR MODEL_DIR HEAD_NAME WEIGHTS_JSON [COSINE_TEMPLATE]
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from freshrank.classify.encoder import base_model_path
from freshrank.classify.models import ModelCard, model_digest, write_card

gpu, target, head_name, weights = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
shutil.rmtree(target, ignore_errors=True)
target.mkdir(parents=True)
parts = sorted(gpu.glob("cross.tgz.part*"))
subprocess.run(f"cat {' '.join(map(str, parts))} | tar xzf - -C {target}", shell=True, check=True)
cross = target / "cross"
save_file(
    {k: v.float() for k, v in load_file(str(cross / "model.safetensors")).items()},
    str(cross / "model.safetensors"),
)
for name in ("loss.csv", "metrics.json", "freshrank-model.json"):
    (cross / f"_{name}").rename(target / name)
shutil.copytree(base_model_path(), target / "encoder")
heads = np.load(gpu / "heads.npz")
np.savez(target / "head.npz", weight=heads[f"{head_name}|weight"], bias=heads[f"{head_name}|bias"])
card = ModelCard.model_validate_json((target / "freshrank-model.json").read_text())
card.weights = weights
if len(sys.argv) > 5:
    card.cosine_template = sys.argv[5]
    card.params["cosine_template"] = sys.argv[5]
card.params["weights"] = weights
write_card(target, card)
print(target, model_digest(target))
