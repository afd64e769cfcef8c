"""Hashtag to label, the one function every stage uses: ``#SharkWeek`` → "shark week" (a leaf module).

Steps, with no per-hashtag rules: split on underscores, case changes (camelCase) and letter/digit
boundaries; keep acronyms (two or more capitals: ``WWII``) as they are; lower-case other words; segment
all-lowercase ASCII compounds (``sharkweek``) with ``wordsegment``'s English word frequencies, accepting a
segmentation only when every piece is a known word and every short piece (≤ 4 letters) is a common one
(≥ 10 million occurrences in the segmenter's corpus); otherwise the token is kept whole, so unknown names are
not chopped into fragments ("instagood" stays whole instead of "inst a good").
"""

from __future__ import annotations

from functools import lru_cache

import regex

MAX_LABEL_INPUT = 100

# An acronym before a capitalised word, a capitalised or lowercase word, an acronym, digits, or a run of
# letters from a script without case (日本).
_TOKENS = regex.compile(
    r"\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?[\p{Ll}\p{M}]+|\p{Lu}[\p{Lu}\p{M}]*|\p{N}+|[\p{L}\p{M}]+"
)
_SEGMENTABLE = regex.compile(r"[a-z]{6,}")
SHORT_PIECE_CHARS = 4
SHORT_PIECE_MIN_COUNT = 1e7


@lru_cache(maxsize=1)
def _segmenter() -> tuple[object, dict[str, float]]:
    import wordsegment

    wordsegment.load()
    return wordsegment, wordsegment.UNIGRAMS


def _plausible(piece: str, unigrams: dict[str, float]) -> bool:
    count = unigrams.get(piece, 0.0)
    return count >= SHORT_PIECE_MIN_COUNT if len(piece) <= SHORT_PIECE_CHARS else count > 0


def _segment(token: str) -> list[str]:
    """Split an all-lowercase ASCII compound into known words, or keep it whole."""
    module, unigrams = _segmenter()
    pieces: list[str] = module.segment(token)  # type: ignore[attr-defined]
    if len(pieces) > 1 and all(_plausible(piece, unigrams) for piece in pieces):
        return pieces
    return [token]


def _words(token: str) -> list[str]:
    if len(token) >= 2 and token.isupper():
        return [token]  # acronym: WWII, NASA
    lowered = token.lower()
    if _SEGMENTABLE.fullmatch(lowered) and token == lowered:
        return _segment(lowered)
    return [lowered]


@lru_cache(maxsize=65536)
def hashtag_to_label(tag: str) -> str:
    """Readable words for a hashtag (with or without '#'); empty string when it has no letters/digits."""
    body = tag.lstrip("#＃")[:MAX_LABEL_INPUT]
    words: list[str] = []
    for token in _TOKENS.findall(body):
        words.extend(_words(token))
    return " ".join(words)
