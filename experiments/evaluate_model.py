"""Ranking quality of a model directory through the product path (ONNX int8, Classifier interface).

Usage: python experiments/evaluate_model.py MODEL_DIR [--torch]
"""

import json
import sys
import time
from pathlib import Path

from freshrank.classify.models import load_model_dir
from freshrank.config import Settings
from freshrank.train.lifecycle import load_movies
from freshrank.train.quality import evaluate_classifier, read_judgments

settings = Settings(state_dir=Path(".devdata/state"))
movies = load_movies(settings)
judgments = read_judgments(settings.judgments_dir / "keyword_judgments.csv")
classifier = load_model_dir(Path(sys.argv[1]), settings, onnx="--torch" not in sys.argv)
t = time.perf_counter()
classifier.fit(movies)
fit_seconds = time.perf_counter() - t
t = time.perf_counter()
report = evaluate_classifier(classifier, movies, judgments)  # fit again: cached embeddings
score_seconds = (time.perf_counter() - t) / 5
print(
    json.dumps(
        {
            "model": sys.argv[1],
            "version": classifier.version,
            "onnx": classifier.onnx,
            "fit_seconds": round(fit_seconds, 1),
            "seconds_per_label": round(score_seconds, 2),
            "mean": report.mean,
            "per_query": report.per_query,
        },
        indent=1,
    )
)
