"""Encode the catalogue once with the frozen base encoder (reference vectors for quality experiments)."""
import sys
import time
from pathlib import Path

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.classify.encoder import TorchEncoder
from freshrank.config import Settings
import gzip, json

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".devdata/base_docs.npy")
s = Settings()
movies = [Movie.model_validate(json.loads(l)) for l in gzip.open(s.movies_path, "rt")]
enc = TorchEncoder()
t = time.time()
v = enc.encode([m.document for m in movies], batch_size=64)
print("encoded", v.shape, time.time() - t, "s")
np.save(out, v)
np.save(out.with_name("doc_ids.npy"), np.array([m.id for m in movies]))
