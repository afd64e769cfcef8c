"""Spelling ids: each hashtag spelling the engine sees gets a small integer (0, 1, 2… in order of first
sight), so that buckets count integers and the windows fold them with array lookups.

With the compiled scanner (``native/``, built by ``make install``) the ids live in Rust, which also reads
a block of texts (``scan``) or of JSONL lines (``read_block``) straight to ids; without it a dict does the
same, and those two return None. Both give the same ids for the same calls. ``names`` maps ids back to
spellings; the engine starts a fresh ``Spellings`` when the old one holds too many dead spellings (so a
list held elsewhere stays valid for the ids it was made with). ``len()`` makes an empty ``Spellings``
falsy: test ``is None``, never ``or``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from freshrank.trends.extract import class_table

try:  # the compiled scanner; the Python extractor gives the same hashtags
    from freshrank_native import Spellings as _Native
except ImportError:  # pragma: no cover - an install without Rust
    _Native = None

NATIVE = _Native is not None


class Spellings:
    """Hashtag spellings numbered in order of first sight."""

    def __init__(self, native: bool | None = None) -> None:
        """``native``: use the compiled scanner (default: where installed)."""
        self.names: list[str] = []
        use = NATIVE if native is None else native
        self._native = _Native() if use and _Native is not None else None
        self._ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def native(self) -> bool:
        return self._native is not None

    def intern(self, names: Iterable[str]) -> np.ndarray:
        """The ids of ``names`` (int64); new names get the next ids."""
        names = list(names)
        if self._native is not None:
            ids = np.frombuffer(self._native.intern(names), dtype=np.int32).astype(np.int64)
            if len(self._native) > len(self.names):
                self._learn(names, ids)
            return ids
        ids_of, known = self._ids, self.names
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            found = ids_of.get(name)
            if found is None:
                found = ids_of[name] = len(known)
                known.append(name)
            out[i] = found
        return out

    def _learn(self, names: list[str], ids: np.ndarray) -> None:
        for i in np.flatnonzero(ids >= len(self.names)).tolist():
            if ids[i] == len(self.names):
                self.names.append(names[i])

    def scan(self, texts: pa.StringArray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(counts, ids)`` of every text's hashtags, by the compiled scanner; a count of -1 marks a text
        it leaves to the Python extractor (``extract.extract_hashtags`` decides the same way for the rest).
        None without the compiled scanner."""
        if self._native is None:
            return None
        if texts.type != pa.string():
            texts = texts.cast(pa.string())
        _, offsets, data = texts.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int32)[texts.offset : texts.offset + len(texts) + 1]
        payload = b"" if data is None else data.to_pybytes()
        counts, ids, new = self._native.scan(payload, bounds.tobytes(), class_table())
        self.names.extend(new)
        return _ints(counts), _ints(ids)

    def read_block(self, block: bytes) -> ReadBlock | None:
        """A block of whole JSONL lines read by the compiled reader in one pass, or None: without it, or
        when a line is not exactly ``{"text", "created_at", "user"?}`` as the reader takes it (then the
        exact parsers decide)."""
        if self._native is None:
            return None
        read = self._native.read_block(block, class_table())
        if read is None:
            return None
        times, counts, ids, new, fallback, user_offsets, user_data, user_valid = read
        self.names.extend(new)
        total = len(times) // 8
        buffers = [pa.py_buffer(user_valid), pa.py_buffer(user_offsets), pa.py_buffer(user_data)]
        users = pa.Array.from_buffers(pa.string(), total, buffers)
        return ReadBlock(
            np.frombuffer(times, dtype=np.int64).copy(), users, _ints(counts), _ints(ids), fallback
        )


@dataclass
class ReadBlock:
    """What the compiled reader makes of a block: per post its event time (epoch ms), user and number of
    hashtags (-1: left to the Python extractor; ``fallback`` holds those texts in order), and the ids."""

    times: np.ndarray
    users: pa.Array
    counts: np.ndarray
    ids: np.ndarray
    fallback: list[str]


def _ints(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int32).astype(np.int64)
