"""BM25 of a label's own words over the movie documents: a lexical signal computed from the label text."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def s_stem(word: str) -> str:
    """Plural to singular by dropping a final ``s`` (not ``ss``/``us``/``is``): ``zombies`` -> ``zombie``."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lowercase word tokens, before stemming."""
    return _TOKEN.findall(text.lower())


def terms(text: str) -> list[str]:
    return [s_stem(t) for t in tokens(text)]


class Bm25Index:
    """Okapi BM25 (k1=1.2, b=0.75) over a fixed list of documents."""

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for row, doc in enumerate(documents):
            for term in terms(doc):
                rows.append(row)
                cols.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
        shape = (len(documents), max(len(self.vocabulary), 1))
        tf = sparse.csc_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        tf.sum_duplicates()
        self._fit(tf, np.asarray(tf.sum(axis=1)).ravel(), k1, b)

    @classmethod
    def from_counts(
        cls,
        tf: sparse.csc_matrix,
        vocabulary: dict[str, int],
        lengths: np.ndarray,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> Bm25Index:
        """An index from term counts (documents × the vocabulary's columns) and document lengths in terms.

        The columns may be a subset of the documents' terms (only the terms to be scored): ``lengths`` carries
        the full lengths, so the scores equal those of the index built from the texts.
        """
        index = cls.__new__(cls)
        index.vocabulary = dict(vocabulary)
        tf = sparse.csc_matrix(tf, dtype=np.float32)
        tf.sum_duplicates()
        index._fit(tf, lengths, k1, b)
        return index

    def _fit(self, tf: sparse.csc_matrix, lengths: np.ndarray, k1: float, b: float) -> None:
        norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()) if len(lengths) else 1.0, 1e-9))
        df = np.diff(tf.indptr).astype(np.float32)
        n = max(tf.shape[0], 1)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        self._tf = tf
        self._norm = norm.astype(np.float32)
        self._k1 = k1

    def score(self, query: str) -> np.ndarray:
        """BM25 of every document for the query's terms (zeros when none occurs)."""
        out = np.zeros(self._tf.shape[0], dtype=np.float32)
        for term in set(terms(query)):
            col = self.vocabulary.get(term)
            if col is None:
                continue
            start, end = self._tf.indptr[col], self._tf.indptr[col + 1]
            rows, tf = self._tf.indices[start:end], self._tf.data[start:end]
            out[rows] += self.idf[col] * tf * (self._k1 + 1) / (tf + self._norm[rows])
        return out
