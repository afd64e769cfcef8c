"""Measure the monitor's score signals on labels with known meaning and on meaningless ones.

``python -m freshrank.monitor.calibrate [JUDGMENTS.csv]`` scores, with the configured classifier over the
indexed catalogue, (a) the labels of judged trends, which have relevant movies, and (b) seeded random
letter strings, which mean nothing, and prints each label's peak z and top score as the monitor computes
them. The thresholds in :class:`~freshrank.monitor.freshness.Thresholds` are chosen between the two groups
(docs/evaluation.md reports the figures).
"""

from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path
from typing import Any

import numpy as np

from freshrank.config import Settings
from freshrank.monitor.freshness import SCORE_SAMPLE, peak_z


def nonsense_labels(count: int = 10, seed: int = 13) -> list[str]:
    """Pronounceable-looking but meaningless two-word labels (no topic list: generated from a seed)."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 8)))
        for _ in range(2 * count)
    ]
    return [f"{words[2 * i]} {words[2 * i + 1]}" for i in range(count)]


def label_figures(scores: np.ndarray) -> dict[str, Any]:
    best = np.sort(scores)[::-1][:SCORE_SAMPLE]  # what the monitor reads back from the index
    return {"peak_z": peak_z(best.tolist()), "top_score": float(best[0])}


def run(judgments: Path | None = None, settings: Settings | None = None) -> dict[str, Any]:
    from freshrank.catalog.loader import load_catalog
    from freshrank.evaluate.io import read_judgments
    from freshrank.labels import hashtag_to_label
    from freshrank.loop.service import ScoringLoop

    settings = settings or Settings()
    path = judgments or settings.judgments_dir / "keyword_judgments.csv"
    judged = sorted({hashtag_to_label(j.trend) for j in read_judgments(path).judgments})
    service = ScoringLoop.from_settings(settings)
    classifier = service.classifier()
    if classifier is None:
        raise RuntimeError("classifier unavailable")
    movies = service.reader.catalog() or load_catalog(settings.movies_path).movies
    classifier.fit(
        movies
    )  # the indexed catalogue in the order refresh fits it (so the embedding cache is shared)
    groups = {"judged": judged, "nonsense": nonsense_labels()}
    figures = {
        group: {
            label: label_figures(row) for label, row in zip(labels, classifier.score(labels), strict=True)
        }
        for group, labels in groups.items()
    }
    z = {group: [f["peak_z"] for f in values.values()] for group, values in figures.items()}
    return {
        "classifier": classifier.name,
        "model_version": classifier.version,
        "labels": figures,
        "peak_z_min_judged": min(z["judged"]),
        "peak_z_max_nonsense": max(z["nonsense"]),
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
