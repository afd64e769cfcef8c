"""Label text and the lexical (BM25) signal: generic rules only, hostile input safe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from freshrank.classify.lexical import Bm25Index, s_stem
from freshrank.classify.models import load_model_dir
from freshrank.labels import hashtag_to_label


def test_the_classifier_reads_the_trend_stages_label(tiny_model_dir: Path) -> None:
    """One hashtag → words function: a model splits a hashtag as the trend stage does, and a label stays."""
    classifier = load_model_dir(tiny_model_dir)
    for tag in (
        "#StarWarsDay",
        "#blackfriday",
        "#COVID19",
        "#WWII",
        "#instagood",
        "#'; DROP TABLE movies; --",
    ):
        label = hashtag_to_label(tag)
        assert classifier.label_text(tag) == label
        assert classifier.label_text(label) == label
    assert len(classifier.label_text("#" + "a" * 10_000)) <= 200
    assert classifier.label_text("#") == "#"


def test_s_stemmer_and_bm25() -> None:
    assert [s_stem(w) for w in ("zombies", "dinosaurs", "glass", "bus", "is")] == [
        "zombie",
        "dinosaur",
        "glass",
        "bus",
        "is",
    ]
    index = Bm25Index(["A zombie movie.", "Zombies, zombies everywhere in the mall.", "A love story.", ""])
    scores = index.score("zombies")
    assert scores[1] > scores[0] > 0 and scores[2] == scores[3] == 0
    assert np.all(index.score("unknown words") == 0)
    assert Bm25Index([]).score("x").shape == (0,)
