"""Search on OpenSearch: BM25 over weighted fields plus ``rank_feature`` trend boosts, ranked in the engine.

Score (the same contract as the SQLite backend, see docs/scale-out.md)::

    text_score = bm25(most_fields: title^4 tagline^2 overview cast^1.5 directors^1.5) / max over candidates
    score      = text_score + boost_weight * sum(trend score of each requested label)

Layout:

* one movie index (``opensearch://host:port/<index>``, default ``freshrank-movies``) whose documents carry a
  ``trend`` field of type ``rank_features``: one feature per scored (model version, label), named by a hash
  of both plus a generation id (``<hash>_<gen>``), so hashtags never become mapping fields;
* one small registry index ``<index>-labels`` that says which generation of each (model version, label) is
  complete. ``put_scores`` writes a new generation with bulk partial updates, refreshes, and only then flips
  the registry entry: searches never see half a label.

Differences from SQLite (documented in docs/scale-out.md): feature values are used by the engine with
Lucene's 9-bit mantissa (relative error < 0.4 %; the hits report the exact stored values), scores <= 0 are
not stored (a rank feature must be positive, so they count as 0), scores for movies not in the index are
dropped, and BM25 statistics are Lucene's, so text scores differ in detail though not in kind.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import pybreaker
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import (
    ConnectionError as OpenSearchConnectionError,
)
from opensearchpy.exceptions import (
    ConnectionTimeout,
    NotFoundError,
    OpenSearchException,
    RequestError,
)

from freshrank.catalog.models import Movie
from freshrank.search.base import ScoreEntry, SearchHit, SearchPage, SearchRequest
from freshrank.search.breaker import breaker_for, open_message

log = logging.getLogger(__name__)

DEFAULT_INDEX = "freshrank-movies"
TEXT_FIELDS = ("title", "tagline", "overview", "cast", "directors")
DEFAULT_FIELD_WEIGHTS = {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
MAX_QUERY_TERMS = 64  # as the SQLite backend: more distinct words are dropped with a warning
MAX_TERM_CHARS = 100
MAX_LIMIT = 10_000
MAX_RESULT_WINDOW = 100_000  # offset + limit beyond this is refused by the engine; we clamp and warn
BULK_CHUNK = 2_000
REQUEST_TIMEOUT = 5.0  # seconds for a search or a lookup: a search box must not hang for 30 s × retries
WRITE_TIMEOUT = 120.0  # a bulk request of BULK_CHUNK updates, or a refresh after one
MIN_FEATURE = 1e-30  # Lucene stores positive normal floats only; smaller scores count as 0
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,200}$")

_ANALYSIS = {
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

_MOVIE_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "long"},
        **{name: {"type": "text", "analyzer": "freshrank_text"} for name in TEXT_FIELDS},
        "genres": {"type": "keyword", "normalizer": "lowercase_keyword"},
        "movie": {"type": "object", "enabled": False},  # the full record, returned in hits
        "trend": {"type": "rank_features"},
    },
}

_REGISTRY_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "model_version": {"type": "keyword"},
        "label": {"type": "keyword", "index": False},
        "feature": {"type": "keyword", "index": False},
        "movies": {"type": "integer"},
        "scored_at": {"type": "double"},
    },
}


class OpenSearchError(RuntimeError):
    """The OpenSearch backend could not do what was asked (bad URL, server down, rejected request)."""


def parse_url(url: str) -> tuple[str, str]:
    """``opensearch://host:port[/index]`` (``opensearchs://`` for TLS) → (HTTP base URL, index name)."""
    parts = urlsplit(url)
    if parts.scheme not in ("opensearch", "opensearchs") or not parts.hostname:
        raise OpenSearchError(f"not an OpenSearch URL: {url!r} (expected opensearch://host:port[/index])")
    scheme = "https" if parts.scheme == "opensearchs" else "http"
    auth = f"{parts.username}:{parts.password}@" if parts.username else ""
    port = parts.port or 9200
    index = parts.path.strip("/") or DEFAULT_INDEX
    if not _INDEX_NAME.match(index):
        raise OpenSearchError(f"invalid index name {index!r}: lowercase letters, digits, '_', '-', '.'")
    return f"{scheme}://{auth}{parts.hostname}:{port}", index


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


class OpenSearchBackend:
    """SearchBackend on an OpenSearch (or Elasticsearch-compatible) cluster."""

    name = "opensearch"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        client: OpenSearch | None = None,
    ) -> None:
        self.url = url
        base, self.index_name = parse_url(url)
        self.registry_name = f"{self.index_name}-labels"
        self.field_weights = {**DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(TEXT_FIELDS)
        if unknown:
            raise OpenSearchError(f"unknown search fields in field_weights: {sorted(unknown)}")
        self.client = client or OpenSearch(
            hosts=[base], timeout=timeout, max_retries=1, retry_on_timeout=False, http_compress=True
        )
        self.timeout = timeout
        self._breaker = breaker_for(base, (OpenSearchConnectionError,))  # ConnectionTimeout included
        self._ready = False

    def close(self) -> None:
        self.client.close()

    # Index management ------------------------------------------------------------------------------

    def ensure_indices(self) -> None:
        """Create the movie index and the registry when missing (idempotent, safe to race)."""
        if self._ready:
            return
        # Every write ends with an explicit refresh, so periodic refreshes (which cut a segment per second
        # during a long bulk update) are not needed for visibility.
        movie_settings = {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "analysis": _ANALYSIS,
            "max_result_window": MAX_RESULT_WINDOW,
            "refresh_interval": "30s",
        }
        self._create(self.index_name, {"settings": movie_settings, "mappings": _MOVIE_MAPPING})
        registry_settings = {"number_of_shards": 1, "number_of_replicas": 0}
        self._create(self.registry_name, {"settings": registry_settings, "mappings": _REGISTRY_MAPPING})
        self._ready = True

    def _create(self, name: str, body: dict[str, Any]) -> None:
        try:
            if self.client.indices.exists(index=name):
                return
            self.client.indices.create(index=name, body=body, request_timeout=WRITE_TIMEOUT)
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise OpenSearchError(f"cannot create index {name}: {exc}") from exc
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} unavailable: {self._reason(exc)}") from exc

    def drop(self) -> None:
        """Delete both indices (tests and `freshrank` resets)."""
        self.client.indices.delete(
            index=f"{self.index_name},{self.registry_name}", ignore=[404], request_timeout=WRITE_TIMEOUT
        )
        self._ready = False

    # Writing ---------------------------------------------------------------------------------------

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies (partial updates keep their trend features); returns the count written."""
        self.ensure_indices()
        actions = (
            {
                "_op_type": "update",
                "_index": self.index_name,
                "_id": str(movie.id),
                "doc": _movie_doc(movie),
                "doc_as_upsert": True,
                "retry_on_conflict": 3,
            }
            for movie in movies
        )
        written = self._bulk(actions, what="indexing movies")
        self._call(self.client.indices.refresh, index=self.index_name, request_timeout=WRITE_TIMEOUT)
        return written

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Write one label's scores as a new generation, then publish it: all of them or none.

        Only positive scores travel (calibration leaves ~2-5 % of the catalogue; a zero adds nothing and a
        rank feature cannot hold one): one bulk of partial updates for those movies, no refresh per
        request, then one explicit refresh of the movie index, then the registry entry written with
        ``refresh=true``. The refresh before the flip is what makes the new values searchable before any
        search can name them; a label whose every score is 0 writes no movie and is still published.
        """
        if not model_version or not label:
            raise ValueError("put_scores needs a model version and a label")
        values = {int(movie_id): _finite(score, movie_id) for movie_id, score in scores.items()}
        positive = {movie_id: value for movie_id, value in values.items() if value >= MIN_FEATURE}
        self.ensure_indices()
        feature = f"{label_key(model_version, label)}_{uuid.uuid4().hex[:8]}"
        actions = (
            {
                "_op_type": "update",
                "_index": self.index_name,
                "_id": str(movie_id),
                "doc": {"trend": {feature: value}},
                "retry_on_conflict": 3,
                "_source": False,
            }
            for movie_id, value in positive.items()
        )
        self._bulk(actions, what=f"scores of {label!r}", missing_ok=True)
        if positive:
            self._call(self.client.indices.refresh, index=self.index_name, request_timeout=WRITE_TIMEOUT)
        entry = {
            "model_version": model_version,
            "label": label,
            "feature": feature,
            "movies": len(values),
            "scored_at": time.time(),
        }
        try:
            self.client.index(
                request_timeout=WRITE_TIMEOUT,
                index=self.registry_name,
                id=label_key(model_version, label),
                body=entry,
                refresh=True,
            )
        except OpenSearchException as exc:
            raise OpenSearchError(f"could not publish the scores of {label!r}: {exc}") from exc

    def delete_scores(self, model_version: str, label: str, batch: int = 2_000) -> int:
        """Remove one label's features, ``batch`` movies per bulk, then its registry entry; returns movies.

        The integ-test distribution has no scripting module, so each movie is read and written back without
        the feature, guarded by its sequence number (a concurrent write wins and the movie is read again).
        """
        self.ensure_indices()
        key = label_key(model_version, label)
        try:
            source = self.client.get(index=self.registry_name, id=key).get("_source")
        except NotFoundError:
            source = None
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} failed: {exc}") from exc
        freed = 0
        if source:
            query = {"rank_feature": {"field": f"trend.{source['feature']}"}}
            freed = self._strip_feature(source["feature"], query, batch)
        try:
            self.client.delete(index=self.registry_name, id=key, params={"refresh": "true"})
        except NotFoundError:
            pass
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} failed: {exc}") from exc
        return freed

    def _strip_feature(self, feature: str, query: dict[str, Any], batch: int) -> int:
        freed = 0
        while True:
            body = {"query": query, "size": max(1, int(batch)), "seq_no_primary_term": True}
            hits = self._call(self.client.search, index=self.index_name, body=body)["hits"]["hits"]
            if not hits:
                return freed
            lines: list[dict[str, Any]] = []
            for hit in hits:
                doc = hit["_source"]
                doc["trend"] = {k: v for k, v in (doc.get("trend") or {}).items() if k != feature}
                guard = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
                lines += [{"index": {"_index": self.index_name, "_id": hit["_id"], **guard}}, doc]
            result = self._call(self.client.bulk, body=lines, params={"refresh": "true"})
            done = sum(1 for item in result["items"] if item["index"].get("status") in (200, 201))
            if not done:  # every write refused (not only lost races): stop rather than loop
                raise OpenSearchError(f"could not remove feature {feature}: {result['items'][0]['index']}")
            freed += done

    def _bulk(self, actions: Iterable[dict[str, Any]], what: str, missing_ok: bool = False) -> int:
        """Run bulk actions; any failed item (bar a missing movie when allowed) fails the whole call."""
        written = 0
        errors: list[str] = []
        try:
            for ok, item in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=BULK_CHUNK,
                raise_on_error=False,
                max_retries=3,
                initial_backoff=1,
                max_backoff=8,
                request_timeout=WRITE_TIMEOUT,
            ):
                result = next(iter(item.values()))
                if ok:
                    written += 1
                elif not (missing_ok and result.get("status") == 404):
                    errors.append(str(result.get("error", result))[:200])
        except OpenSearchException as exc:
            raise OpenSearchError(f"{what} failed: {self._reason(exc)}") from exc
        if errors:
            raise OpenSearchError(f"{what} failed for {len(errors)} documents, e.g. {errors[0]}")
        return written

    # Reading ---------------------------------------------------------------------------------------

    def _registry(self, model_version: str) -> list[dict[str, Any]]:
        self.ensure_indices()
        body = {
            "query": {"term": {"model_version": model_version}},
            "size": 10_000,
            "sort": [{"scored_at": "desc"}],
        }
        response = self._call(self.client.search, index=self.registry_name, body=body)
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def scored_labels(self, model_version: str) -> set[str]:
        return {entry["label"] for entry in self._registry(model_version)}

    def score_entries(self) -> list[ScoreEntry]:
        self.ensure_indices()
        body = {"query": {"match_all": {}}, "size": 10_000, "sort": [{"scored_at": "asc"}]}
        response = self._call(self.client.search, index=self.registry_name, body=body)
        return [
            ScoreEntry(e["model_version"], e["label"], float(e["scored_at"]))
            for e in (hit["_source"] for hit in response["hits"]["hits"])
        ]

    def model_versions(self) -> list[str]:
        """Model versions with stored scores, most recently written first."""
        self.ensure_indices()
        body = {
            "size": 0,
            "aggs": {
                "versions": {
                    "terms": {"field": "model_version", "size": 1000, "order": {"latest": "desc"}},
                    "aggs": {"latest": {"max": {"field": "scored_at"}}},
                }
            },
        }
        response = self._call(self.client.search, index=self.registry_name, body=body)
        return [bucket["key"] for bucket in response["aggregations"]["versions"]["buckets"]]

    def count(self) -> int:
        self.ensure_indices()
        return int(self._call(self.client.count, index=self.index_name)["count"])

    def movies(self) -> Iterator[Movie]:
        """Every indexed movie in id order (what a classifier fits on)."""
        self.ensure_indices()
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 1000,
                "sort": [{"id": "asc"}],
                "_source": ["movie"],
                "query": {"match_all": {}},
            }
            if after is not None:
                body["search_after"] = after
            hits = self._call(self.client.search, index=self.index_name, body=body)["hits"]["hits"]
            for hit in hits:
                yield Movie.model_validate(hit["_source"]["movie"])
            if len(hits) < 1000:
                return
            after = hits[-1]["sort"]

    def genres(self) -> list[str]:
        self.ensure_indices()
        terms = {"field": "genres", "size": 1000, "order": {"_key": "asc"}}
        body = {"size": 0, "aggs": {"genres": {"terms": terms}}}
        response = self._call(self.client.search, index=self.index_name, body=body)
        return [bucket["key"] for bucket in response["aggregations"]["genres"]["buckets"]]

    def search(self, request: SearchRequest) -> SearchPage:
        """Ranked by text_score + boost_weight * sum(trend scores), ties by id, all inside the engine."""
        self.ensure_indices()
        limit = max(0, min(int(request.limit), MAX_LIMIT))
        offset = max(0, int(request.offset))
        labels = request.labels
        terms, warnings = query_terms(request.text)
        if request.text.strip() and not terms:
            warnings.append("the query has no searchable words; nothing matched")
            return SearchPage(hits=[], total=0, warnings=warnings)
        if offset + limit > MAX_RESULT_WINDOW:
            warnings.append(f"results beyond {MAX_RESULT_WINDOW} are not available")
            offset = min(offset, MAX_RESULT_WINDOW)
            limit = MAX_RESULT_WINDOW - offset
        text_query = self._text_query(terms)
        genre_filter = [{"term": {"genres": request.genre}}] if request.genre else []
        features, max_text = self._prepare(request.model_version, labels, text_query, genre_filter)
        if text_query and max_text <= 0:
            return SearchPage(hits=[], total=0, warnings=warnings)  # no candidate matches the text
        body = self._ranking_body(text_query, max_text, genre_filter, features, request.boost_weight)
        body.update({"from": offset, "size": limit})
        response = self._call(
            self.client.search,
            index=self.index_name,
            body=body,
            params={"include_named_queries_score": "true"},
        )
        hits = [self._hit(hit, labels, features, max_text) for hit in response["hits"]["hits"]]
        return SearchPage(hits=hits, total=int(response["hits"]["total"]["value"]), warnings=warnings)

    def _prepare(
        self,
        model_version: str,
        labels: Sequence[str],
        text_query: dict[str, Any] | None,
        genre_filter: list[dict[str, Any]],
    ) -> tuple[dict[str, str], float]:
        """The labels' published features and the best text score, in one round trip (``msearch``)."""
        searches: list[dict[str, Any]] = []
        if labels and model_version:
            ids = [label_key(model_version, label) for label in labels]
            registry = {"query": {"ids": {"values": ids}}, "size": len(ids)}
            searches += [{"index": self.registry_name}, registry]
        if text_query is not None:
            searches += [{"index": self.index_name}, self._max_text_body(text_query, genre_filter)]
        if not searches:
            return {}, 0.0
        responses = self._call(self.client.msearch, body=searches)["responses"]
        for response in responses:
            if "error" in response:
                self._ready = False  # e.g. an index deleted under us: recreate it on the next call
                raise OpenSearchError(f"OpenSearch at {self.url} failed: {response['error']}")
        features: dict[str, str] = {}
        if labels and model_version:
            entries = [hit["_source"] for hit in responses.pop(0)["hits"]["hits"]]
            features = {entry["label"]: entry["feature"] for entry in entries}
        max_text = 0.0
        if text_query is not None:
            hits = responses[0]["hits"]["hits"]
            max_text = float(hits[0]["_score"]) if hits else 0.0
        return features, max_text

    def _text_query(self, terms: Sequence[str]) -> dict[str, Any] | None:
        if not terms:
            return None
        weights = self.field_weights
        fields = [f"{name}^{weights[name]}" for name in TEXT_FIELDS if weights[name] > 0]
        # multi_match takes plain text (never query syntax); most_fields sums the weighted field scores.
        return {
            "multi_match": {
                "query": " ".join(terms),
                "fields": fields,
                "type": "most_fields",
                "operator": "or",
            }
        }

    @staticmethod
    def _max_text_body(text_query: dict[str, Any], genre_filter: list[dict[str, Any]]) -> dict[str, Any]:
        """The best text score among the candidates: the normaliser that puts text_score in [0, 1]."""
        return {
            "size": 1,
            "_source": False,
            "track_total_hits": False,
            "query": {"bool": {"must": [text_query], "filter": genre_filter}},
        }

    @staticmethod
    def _ranking_body(
        text_query: dict[str, Any] | None,
        max_text: float,
        genre_filter: list[dict[str, Any]],
        features: Mapping[str, str],
        weight: float,
    ) -> dict[str, Any]:
        boosts = (
            [
                {"rank_feature": {"field": f"trend.{feature}", "linear": {}, "boost": float(weight)}}
                for feature in features.values()
            ]
            if weight > 0
            else []
        )
        must: list[dict[str, Any]] = []
        if text_query is not None and max_text > 0:
            must.append({"bool": {"must": [text_query], "boost": 1.0 / max_text, "_name": "text"}})
        # Without a scoring clause the filter must match everything, or the boosts would become required.
        filters = genre_filter or ([] if must else [{"match_all": {}}])
        query = {"bool": {"must": must, "filter": filters, "should": boosts, "minimum_should_match": 0}}
        return {
            "query": query,
            "sort": [{"_score": "desc"}, {"id": "asc"}],
            "track_total_hits": True,
            # the page's records and only the requested labels' values (a document carries every label's)
            "_source": ["movie", *(f"trend.{feature}" for feature in features.values())],
        }

    @staticmethod
    def _hit(
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

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return self._breaker.call(method, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise OpenSearchError(open_message(self._breaker, "OpenSearch")) from exc
        except NotFoundError as exc:
            self._ready = False  # the index was deleted under us: recreate it on the next call
            raise OpenSearchError(f"OpenSearch index missing: {exc}") from exc
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} failed: {self._reason(exc)}") from exc

    def _reason(self, exc: OpenSearchException) -> str:
        """One line saying what went wrong; a server that is down or hung is named as such."""
        if isinstance(exc, ConnectionTimeout):
            return "timed out (server overloaded or hung?)"
        if isinstance(exc, OpenSearchConnectionError):
            return "server not reachable (is it running? `bash scripts/services.sh up opensearch`)"
        return str(exc)


def _movie_doc(movie: Movie) -> dict[str, Any]:
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


def _finite(score: float, movie_id: int) -> float:
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"score for movie {movie_id} is not a finite number: {score!r}")
    return value
