"""What the OpenSearch and Elasticsearch backends share: index layout, query bodies, hits, bulk actions.

Both engines are Lucene with the same BM25, the same analysis chain and a linear feature query for the
trend boost (``rank_features`` + ``rank_feature`` on OpenSearch, ``sparse_vector`` + ``term`` on
Elasticsearch 8); only their clients, URLs, auth and errors differ, which stay in each backend's module.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from freshrank.catalog.models import Movie
from freshrank.search.base import SearchHit, SearchRequest

DEFAULT_INDEX = "freshrank-movies"
TEXT_FIELDS = ("title", "tagline", "overview", "cast", "directors")
DEFAULT_FIELD_WEIGHTS = {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
MAX_QUERY_TERMS = 64  # as the SQLite backend: more distinct words are dropped with a warning
MAX_TERM_CHARS = 100
MAX_LIMIT = 10_000
MAX_RESULT_WINDOW = 100_000  # offset + limit beyond this is refused by the engine; we clamp and warn
BULK_CHUNK = 2_000
MIN_FEATURE = 1e-30  # Lucene stores positive normal floats only; smaller scores count as 0
REQUEST_TIMEOUT = 5.0  # seconds for a search or a lookup: a search box must not hang for 30 s × retries
WRITE_TIMEOUT = 120.0  # a bulk request of BULK_CHUNK updates, or a refresh after one
# Keep-alive connections per engine node: as many as the API's threads that may search at once (anyio's
# default pool is 40); beyond the pool a request opens a new connection and the client drops it afterwards.
CONNECTIONS = 40
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,200}$")

ANALYSIS = {
    "analyzer": {
        # The SQLite backend tokenises with `porter unicode61 remove_diacritics 2`: the same steps here.
        "freshrank_text": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "porter_stem"],
        }
    },
    "normalizer": {"lowercase_keyword": {"type": "custom", "filter": ["lowercase"]}},
}

REGISTRY_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "model_version": {"type": "keyword"},
        "label": {"type": "keyword", "index": False},
        "feature": {"type": "keyword", "index": False},
        "movies": {"type": "integer"},
        "scored_at": {"type": "double"},
    },
}
SMALL_INDEX = {"number_of_shards": 1, "number_of_replicas": 0}


def movie_mapping(trend_type: str) -> dict[str, Any]:
    """The movie index: analysed text fields, a genre keyword, the record, and ``trend`` of ``trend_type``."""
    return {
        "dynamic": "strict",
        "properties": {
            "id": {"type": "long"},
            **{name: {"type": "text", "analyzer": "freshrank_text"} for name in TEXT_FIELDS},
            "genres": {"type": "keyword", "normalizer": "lowercase_keyword"},
            "movie": {"type": "object", "enabled": False},  # the full record, returned in hits
            "trend": {"type": trend_type},
        },
    }


def movie_index_settings() -> dict[str, Any]:
    # Every write ends with an explicit refresh, so periodic refreshes (which cut a segment per second
    # during a long bulk update) are not needed for visibility.
    return {
        **SMALL_INDEX,
        "analysis": ANALYSIS,
        "max_result_window": MAX_RESULT_WINDOW,
        "refresh_interval": "30s",
    }


def compress(base_url: str) -> bool:
    """gzip the HTTP bodies only across a network: on loopback it costs both ends CPU and saves nothing."""
    host = urlsplit(base_url).hostname or ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def index_name(index: str, error: type[Exception]) -> str:
    if not INDEX_NAME.match(index):
        raise error(f"invalid index name {index!r}: lowercase letters, digits, '_', '-', '.'")
    return index


def query_terms(text: str) -> tuple[list[str], list[str]]:
    """The words of user text (the SQLite backend's rules) and warnings; nothing typed is query syntax."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text))
    terms = list(dict.fromkeys(word.lower()[:MAX_TERM_CHARS] for word in words))
    warnings: list[str] = []
    if len(terms) > MAX_QUERY_TERMS:
        warnings.append(f"query has {len(terms)} distinct words; only the first {MAX_QUERY_TERMS} are used")
        terms = terms[:MAX_QUERY_TERMS]
    return terms, warnings


def label_key(model_version: str, label: str) -> str:
    """A safe, fixed-length id for (model version, label): hashtags never become field names."""
    return hashlib.sha256(f"{model_version}\x00{label}".encode()).hexdigest()[:32]


def new_feature(key: str, now: float | None = None) -> str:
    """A new generation of ``key``'s feature: ``<key>_<8 hex: epoch seconds><6 hex: random>``."""
    stamp = int(time.time() if now is None else now)
    return f"{key}_{stamp:08x}{uuid.uuid4().hex[:6]}"


def feature_age(feature: str, now: float) -> float:
    """Seconds since the feature's generation was started (infinite for a name without a time: older ones)."""
    generation = feature.rpartition("_")[2]
    if len(generation) != 14:
        return math.inf
    try:
        return now - int(generation[:8], 16)
    except ValueError:
        return math.inf


class Window:
    """A search request's page, labels, words and genre filter, as both engines take them."""

    def __init__(self, request: SearchRequest) -> None:
        self.limit = max(0, min(int(request.limit), MAX_LIMIT))
        self.offset = max(0, int(request.offset))
        self.labels = request.labels  # de-duplicated, blanks dropped (SearchRequest)
        self.terms, self.warnings = query_terms(request.text)
        self.no_words = bool(request.text.strip()) and not self.terms
        if self.no_words:
            self.warnings.append("the query has no searchable words; nothing matched")
        if self.offset + self.limit > MAX_RESULT_WINDOW:
            self.warnings.append(f"results beyond {MAX_RESULT_WINDOW} are not available")
            self.offset = min(self.offset, MAX_RESULT_WINDOW)
            self.limit = MAX_RESULT_WINDOW - self.offset
        self.genre_filter = [{"term": {"genres": request.genre}}] if request.genre else []


def text_query(terms: Sequence[str], weights: Mapping[str, float]) -> dict[str, Any] | None:
    if not terms:
        return None
    fields = [f"{name}^{weights[name]}" for name in TEXT_FIELDS if weights[name] > 0]
    # multi_match takes plain text (never query syntax); most_fields sums the weighted field scores.
    return {
        "multi_match": {"query": " ".join(terms), "fields": fields, "type": "most_fields", "operator": "or"}
    }


def prepare_searches(
    index: str,
    registry: str,
    model_version: str,
    labels: Sequence[str],
    text: dict[str, Any] | None,
    genre_filter: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The ``msearch`` body: the labels' registry entries, and the best text score among the candidates
    (the normaliser that puts text_score in [0, 1])."""
    searches: list[dict[str, Any]] = []
    if labels and model_version:
        ids = [label_key(model_version, label) for label in labels]
        searches += [{"index": registry}, {"query": {"ids": {"values": ids}}, "size": len(ids)}]
    if text is not None:
        best = {
            "size": 1,
            "_source": False,
            "track_total_hits": False,
            "query": {"bool": {"must": [text], "filter": genre_filter}},
        }
        searches += [{"index": index}, best]
    return searches


def prepared(
    responses: list[dict[str, Any]], with_labels: bool, with_text: bool
) -> tuple[dict[str, str], float]:
    """(label → published feature, best text score) from the ``msearch`` answers, in request order."""
    features: dict[str, str] = {}
    if with_labels:
        entries = [hit["_source"] for hit in responses.pop(0)["hits"]["hits"]]
        features = {entry["label"]: entry["feature"] for entry in entries}
    max_text = 0.0
    if with_text:
        hits = responses[0]["hits"]["hits"]
        max_text = float(hits[0]["_score"]) if hits else 0.0
    return features, max_text


def ranking_query(
    text: dict[str, Any] | None,
    max_text: float,
    genre_filter: list[dict[str, Any]],
    boosts: list[dict[str, Any]],
) -> dict[str, Any]:
    """text / max_text (named ``text``, for the per-hit text score) + the engine's feature boost clauses."""
    must: list[dict[str, Any]] = []
    if text is not None and max_text > 0:
        must.append({"bool": {"must": [text], "boost": 1.0 / max_text, "_name": "text"}})
    # Without a scoring clause the filter must match everything, or the boosts would become required.
    filters = genre_filter or ([] if must else [{"match_all": {}}])
    return {"bool": {"must": must, "filter": filters, "should": boosts, "minimum_should_match": 0}}


def page_source(features: Mapping[str, str]) -> list[str]:
    """The page's records and only the requested labels' values (a document carries every label's)."""
    return ["movie", *(f"trend.{feature}" for feature in features.values())]


def hit_of(
    hit: dict[str, Any], labels: Sequence[str], features: Mapping[str, str], max_text: float
) -> SearchHit:
    source = hit["_source"]
    movie = Movie.model_validate(source["movie"])
    stored = source.get("trend") or {}
    trend_scores = {
        label: float(stored.get(features[label], 0.0)) if label in features else 0.0 for label in labels
    }
    text_score = float((hit.get("matched_queries") or {}).get("text", 0.0)) if max_text > 0 else 0.0
    return SearchHit(
        id=movie.id,
        title=movie.title,
        text_score=text_score,
        trend_scores=trend_scores,
        score=float(hit["_score"] or 0.0),
        release_year=movie.release_year,
        genres=movie.genres,
        overview=movie.overview,
    )


def movie_actions(index: str, movies: Iterable[Movie]) -> Iterable[dict[str, Any]]:
    """Partial updates (upserts) of the movies' fields: their trend features stay."""
    for movie in movies:
        yield {
            "_op_type": "update",
            "_index": index,
            "_id": str(movie.id),
            "doc": movie_doc(movie),
            "doc_as_upsert": True,
            "retry_on_conflict": 3,
        }


def positive_scores(scores: Mapping[int, float]) -> tuple[int, dict[int, float]]:
    """(how many scores were given, the ones a rank feature can hold: > 0); refuses a non-finite one."""
    values = {int(movie_id): finite(score, movie_id) for movie_id, score in scores.items()}
    return len(values), {movie_id: value for movie_id, value in values.items() if value >= MIN_FEATURE}


def score_actions(index: str, feature: str, positive: Mapping[int, float]) -> Iterable[dict[str, Any]]:
    """One partial update per movie with a score > 0, nothing echoed back."""
    for movie_id, value in positive.items():
        yield {
            "_op_type": "update",
            "_index": index,
            "_id": str(movie_id),
            "doc": {"trend": {feature: value}},
            "retry_on_conflict": 3,
            "_source": False,
        }


def strip_feature_operations(
    index: str, feature: str, hits: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Bulk lines that write each hit back without ``feature``, guarded by its sequence number."""
    operations: list[dict[str, Any]] = []
    for hit in hits:
        doc = hit["_source"]
        doc["trend"] = {k: v for k, v in (doc.get("trend") or {}).items() if k != feature}
        guard = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
        operations += [{"index": {"_index": index, "_id": hit["_id"], **guard}}, doc]
    return operations


def stripped_count(result: Mapping[str, Any]) -> int:
    return sum(1 for item in result["items"] if item["index"].get("status") in (200, 201))


def bulk_outcome(results: Iterable[tuple[bool, dict[str, Any]]], missing_ok: bool) -> tuple[int, list[str]]:
    """(items written, errors) of a ``streaming_bulk`` run; a missing movie is no error when allowed."""
    written = 0
    errors: list[str] = []
    for ok, item in results:
        result = next(iter(item.values()))
        if ok:
            written += 1
        elif not (missing_ok and result.get("status") == 404):
            errors.append(str(result.get("error", result))[:200])
    return written, errors


def movie_doc(movie: Movie) -> dict[str, Any]:
    return {
        "id": movie.id,
        "title": movie.title,
        "tagline": movie.tagline,
        "overview": movie.overview,
        "cast": ", ".join(movie.cast),
        "directors": ", ".join(movie.directors),
        "genres": list(movie.genres),
        "movie": movie.model_dump(mode="json"),
    }


def finite(score: float, movie_id: int) -> float:
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"score for movie {movie_id} is not a finite number: {score!r}")
    return value
