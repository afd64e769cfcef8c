"""Hashtag extraction: Unicode-aware, not fooled by URLs, HTML entities or trailing punctuation.

Rules (close to twitter-text): a hashtag is ``#`` or ``＃`` followed by letters, combining marks, digits,
underscores and zero-width (non-)joiners, with at least one letter (``#1`` is not a hashtag; variation
selectors such as the emoji VS-16 end a tag). The sign must not follow a word character, ``&`` (HTML
entities such as ``&#39;``), ``#``, ``@`` or ``/``. URLs are removed before matching, so
``https://x.org/page#section`` yields nothing. Entities are decoded first (``caf&eacute;`` is ``café``).
Tags longer than ``MAX_TAG_CHARS`` are ignored (a 10,000-character "tag" is noise, not a topic). Each tag is
returned once per text (case-folded: ``#Love #love`` gives ``Love``), in order of appearance, without the
``#``, in its original case.

Speed: pure-ASCII texts take a stdlib ``re`` pass; other texts the ``regex`` module, whose ``\\p{L}``,
``\\p{M}`` classes cover combining marks (Devanagari, Thai, decomposed accents) that stdlib ``\\w`` misses.
"""

from __future__ import annotations

import html
import re

import numpy as np
import regex

MAX_TAG_CHARS = 100

_URL = re.compile(r"(?:\b[a-zA-Z][a-zA-Z0-9+.-]*://|\bwww\.)\S*")
_ASCII_TAG = re.compile(r"(?<![\w&#@/])#([0-9_]*[A-Za-z][A-Za-z0-9_]*)")
# The Unicode pattern's character classes; the compiled scanner (``native/``) reads them as a table.
_BEFORE = r"[\p{L}\p{M}\p{N}_&#＃@/]"  # a sign right after one of these starts no hashtag
_PREFIX = r"[\p{N}\p{M}_--\p{VS}]"  # may come before a hashtag's first letter
_LETTER = r"\p{L}"
_REST = r"[\p{L}\p{M}\p{N}_\u200c\u200d--\p{VS}]"  # may follow the first letter
_UNICODE_TAG = regex.compile(rf"(?<!{_BEFORE})[#＃]({_PREFIX}*{_LETTER}{_REST}*)", flags=regex.V1)


def _clean(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    if "://" in text or "www." in text:
        text = _URL.sub(" ", text)
    return text


def _find(text: str) -> list[str]:
    if text.isascii():
        return _ASCII_TAG.findall(text)
    return _UNICODE_TAG.findall(text)


def dedupe_folded(tags: list[str]) -> list[str]:
    """Keep the first spelling of each case-folded tag (``#Love #love`` is one tag)."""
    if len(tags) < 2:
        return tags
    folded_all = "\0".join(tags).casefold().split("\0")
    if len(folded_all) == len(tags) == len(set(folded_all)):
        return tags
    seen: set[str] = set()
    unique = []
    for tag in tags:
        folded = tag.casefold()
        if folded not in seen:
            seen.add(folded)
            unique.append(tag)
    return unique


def extract_hashtags(text: str) -> list[str]:
    """Hashtags in ``text``: without '#', original case, each case-folded tag once, in order."""
    if "#" not in text and "＃" not in text:
        return []
    text = _clean(text)
    tags = _find(text)
    if len(tags) > 1:
        tags = dedupe_folded(tags)
    if len(text) > MAX_TAG_CHARS:
        tags = [tag for tag in tags if len(tag) <= MAX_TAG_CHARS]
    return tags


# Bits per code point for the compiled scanner (keep in step with native/src/lib.rs): the URL pattern's
# \w and \s (stdlib ``re``), then the hashtag pattern's classes (``regex``).
CLASS_BITS = (
    (re.compile(r"\w+"), 1),
    (re.compile(r"\s+"), 2),
    (regex.compile(f"{_BEFORE}+", flags=regex.V1), 4),
    (regex.compile(f"{_PREFIX}+", flags=regex.V1), 8),
    (regex.compile(f"{_LETTER}+", flags=regex.V1), 16),
    (regex.compile(f"{_REST}+", flags=regex.V1), 32),
)
_table: bytes | None = None


def class_table() -> bytes:
    """One byte of ``CLASS_BITS`` per code point, found by the very patterns this module matches with."""
    global _table
    if _table is None:
        codes = np.arange(0x110000, dtype="<u4")
        everything = codes.tobytes().decode("utf-32-le", "surrogatepass")
        table = np.zeros(0x110000, dtype=np.uint8)
        for pattern, bit in CLASS_BITS:
            for match in pattern.finditer(everything):
                table[match.start() : match.end()] |= bit
        _table = table.tobytes()
    return _table
