"""Label text and the lexical (BM25) signal: generic rules only, hostile input safe."""

from __future__ import annotations

import numpy as np

from freshrank.classify.labels import label_words
from freshrank.classify.lexical import Bm25Index, s_stem


def test_label_words() -> None:
    assert label_words("#StarWarsDay") == "star wars day"
    assert label_words("#blackfriday") == "black friday"
    assert label_words("#COVID19") == "covid 19"
    assert label_words("#'; DROP TABLE movies; --") == "drop table movies"
    assert len(label_words("#" + "a" * 10_000)) < 400
    assert label_words("#") == "#"


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
