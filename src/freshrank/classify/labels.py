"""Label text: a hashtag as the words a model reads (``#StarWarsDay`` -> ``star wars day``)."""

from __future__ import annotations

import re
from functools import lru_cache

MAX_LABEL_CHARS = 200  # a 10,000-character hashtag is noise; its head is enough to score it
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)")
_NON_WORD = re.compile(r"[^\w]+|_+")


@lru_cache(maxsize=1)
def _segmenter() -> object:
    import wordsegment

    wordsegment.load()
    return wordsegment


def label_words(label: str) -> str:
    """Strip ``#``/``@``, split camelCase, underscores and run-together words; lower case."""
    text = label.strip()[:MAX_LABEL_CHARS]
    words: list[str] = []
    for chunk in _NON_WORD.split(text):
        for part in _CAMEL.split(chunk):
            if not part:
                continue
            if part.isalpha() and part.islower() and len(part) > 3:
                words.extend(_segmenter().segment(part))  # type: ignore[attr-defined]
            else:
                words.append(part.lower())
    return " ".join(words) or text.lower()
