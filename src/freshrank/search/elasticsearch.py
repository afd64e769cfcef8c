"""Search on Elasticsearch 8: BM25 over weighted fields plus ``sparse_vector`` trend boosts, in the engine.

Score (the same contract as the SQLite and OpenSearch backends, see docs/scale-out.md)::

    text_score = bm25(most_fields: title^4 tagline^2 overview cast^1.5 directors^1.5) / max over candidates
    score      = text_score + boost_weight * sum(trend score of each requested label)

Layout (the OpenSearch backend's, with core-only field types):

* one movie index (``elasticsearch://[user:pass@]host:port/<index>``, default ``freshrank-movies``) whose
  documents carry a ``trend`` field of type ``sparse_vector`` (core since 8.11, indexed as Lucene
  ``FeatureField``s like ``rank_features``): one feature per scored (model version, label), named by a hash of
  both plus a generation id, so hashtags never become mapping fields. Only scores > 0 are stored (sparse);
* a ``term`` query on a ``sparse_vector`` field is Lucene's linear ``FeatureField`` query, so
  ``{"term": {"trend": {"value": feature, "boost": w}}}`` adds ``w * score``: the boost needs no scripting
  module (the integ-test distribution has neither painless nor mapper-extras);
* one small registry index ``<index>-labels`` says which generation of each (model version, label) is
  complete, so a label with no score > 0 is still known as scored. ``put_scores`` writes a new generation with
  bulk partial updates, refreshes, and only then flips the registry entry: searches never see half a label.

Text analysis uses ``porter_stem`` and ``asciifolding``: a stock Elasticsearch has them (analysis-common); the
integ-test distribution gets them from the small plugin scripts/elasticsearch.sh builds (docs/scale-out.md).
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import pybreaker
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    helpers,
)

from freshrank.catalog.models import Movie
from freshrank.search.base import ScoreEntry, SearchHit, SearchPage, SearchRequest
from freshrank.search.breaker import breaker_for, open_message
from freshrank.search.opensearch import label_key, query_terms

log = logging.getLogger(__name__)

DEFAULT_INDEX = "freshrank-movies"
DEFAULT_PORT = 9201  # scripts/elasticsearch.sh; OpenSearch keeps 9200
TEXT_FIELDS = ("title", "tagline", "overview", "cast", "directors")
DEFAULT_FIELD_WEIGHTS = {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
MAX_LIMIT = 10_000
MAX_RESULT_WINDOW = 100_000  # offset + limit beyond this is refused by the engine; we clamp and warn
BULK_CHUNK = 2_000
REQUEST_TIMEOUT = 5.0  # seconds for a search or a lookup: a search box must not hang for 30 s × retries
WRITE_TIMEOUT = 120.0  # a bulk request of BULK_CHUNK updates, or a refresh after one
MIN_FEATURE = 1e-30  # Lucene stores positive normal floats only; smaller scores count as 0
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,200}$")
_ERRORS = (ApiError, TransportError)

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
        "trend": {"type": "sparse_vector"},
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


class ElasticsearchError(RuntimeError):
    """The Elasticsearch backend could not do what was asked (bad URL, server down, rejected request)."""


def parse_url(url: str) -> tuple[str, tuple[str, str] | None, str]:
    """``elasticsearch://[user:pass@]host:port[/index]`` → (HTTP base URL, basic auth or None, index)."""
    parts = urlsplit(url)
    if parts.scheme not in ("elasticsearch", "elasticsearchs") or not parts.hostname:
        raise ElasticsearchError(
            f"not an Elasticsearch URL: {url!r} (expected elasticsearch://[user:pass@]host:port[/index])"
        )
    scheme = "https" if parts.scheme == "elasticsearchs" else "http"
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    index = parts.path.strip("/") or DEFAULT_INDEX
    if not _INDEX_NAME.match(index):
        raise ElasticsearchError(f"invalid index name {index!r}: lowercase letters, digits, '_', '-', '.'")
    return f"{scheme}://{parts.hostname}:{parts.port or DEFAULT_PORT}", auth, index


class ElasticsearchBackend:
    """SearchBackend on an Elasticsearch 8 cluster."""

    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        client: Elasticsearch | None = None,
    ) -> None:
        base, auth, self.index_name = parse_url(url)
        self.url = url.replace(f"{auth[1]}@", "***@") if auth and auth[1] else url  # for messages
        self.registry_name = f"{self.index_name}-labels"
        self.field_weights = {**DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(TEXT_FIELDS)
        if unknown:
            raise ElasticsearchError(f"unknown search fields in field_weights: {sorted(unknown)}")
        self.client = client or Elasticsearch(
            hosts=[base],
            basic_auth=auth,
            request_timeout=timeout,
            max_retries=1,
            retry_on_timeout=False,
            http_compress=True,
        )
        self._writer = self.client.options(request_timeout=WRITE_TIMEOUT)  # bulk, refresh, index admin
        self._breaker = breaker_for(base, (TransportConnectionError, ConnectionTimeout))
        self._ready = False

    def close(self) -> None:
        self.client.close()

    # Index management ------------------------------------------------------------------------------

    def ensure_indices(self) -> None:
        """Create the movie index and the registry when missing (idempotent, safe to race)."""
        if self._ready:
            return
        # Every write ends with an explicit refresh, so periodic refreshes are not needed for visibility.
        movie_settings = {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "analysis": _ANALYSIS,
            "max_result_window": MAX_RESULT_WINDOW,
            "refresh_interval": "30s",
        }
        self._create(self.index_name, movie_settings, _MOVIE_MAPPING)
        self._create(self.registry_name, {"number_of_shards": 1, "number_of_replicas": 0}, _REGISTRY_MAPPING)
        self._ready = True

    def _create(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        try:
            if self.client.indices.exists(index=name):
                return
            self._writer.indices.create(index=name, settings=settings, mappings=mappings)
        except (AuthenticationException, AuthorizationException) as exc:
            raise self._refused(exc) from exc
        except ApiError as exc:
            if exc.message != "resource_already_exists_exception":
                raise ElasticsearchError(f"cannot create index {name}: {exc}") from exc
        except TransportError as exc:
            raise ElasticsearchError(f"Elasticsearch at {self.url} unavailable: {_reason(exc)}") from exc

    def drop(self) -> None:
        """Delete both indices (tests and resets)."""
        self._writer.indices.delete(index=f"{self.index_name},{self.registry_name}", ignore_unavailable=True)
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
        self._call(self._writer.indices.refresh, index=self.index_name)
        return written

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Write one label's scores > 0 as a new generation, then publish it: all of them or none."""
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
        if positive:  # the refresh before the registry flip makes the values searchable first
            self._call(self._writer.indices.refresh, index=self.index_name)
        entry = {
            "model_version": model_version,
            "label": label,
            "feature": feature,
            "movies": len(values),
            "scored_at": time.time(),
        }
        try:
            self._writer.index(
                index=self.registry_name, id=label_key(model_version, label), document=entry, refresh=True
            )
        except _ERRORS as exc:
            raise ElasticsearchError(f"could not publish the scores of {label!r}: {exc}") from exc

    def delete_scores(self, model_version: str, label: str, batch: int = 2_000) -> int:
        """Remove one label's features, ``batch`` movies per bulk, then its registry entry; returns movies.

        No scripting on the integ-test distribution: each movie is read and written back without the
        feature, guarded by its sequence number (a concurrent write wins and the movie is read again).
        """
        self.ensure_indices()
        key = label_key(model_version, label)
        try:
            entry = self.client.get(index=self.registry_name, id=key)
            source = entry.get("_source")
        except NotFoundError:
            source = None
        except _ERRORS as exc:
            raise ElasticsearchError(f"Elasticsearch at {self.url} failed: {exc}") from exc
        freed = self._strip_feature(source["feature"], batch) if source else 0
        try:
            self.client.delete(index=self.registry_name, id=key, refresh=True)
        except NotFoundError:
            pass
        except _ERRORS as exc:
            raise ElasticsearchError(f"Elasticsearch at {self.url} failed: {exc}") from exc
        return freed

    def _strip_feature(self, feature: str, batch: int) -> int:
        freed = 0
        while True:
            response = self._call(
                self.client.search,
                index=self.index_name,
                query={"term": {"trend": {"value": feature}}},
                size=max(1, int(batch)),
                seq_no_primary_term=True,
            )
            hits = response["hits"]["hits"]
            if not hits:
                return freed
            operations: list[dict[str, Any]] = []
            for hit in hits:
                doc = hit["_source"]
                doc["trend"] = {k: v for k, v in (doc.get("trend") or {}).items() if k != feature}
                guard = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
                operations += [{"index": {"_index": self.index_name, "_id": hit["_id"], **guard}}, doc]
            result = self._call(self.client.bulk, operations=operations, refresh=True)
            done = sum(1 for item in result["items"] if item["index"].get("status") in (200, 201))
            if not done:  # every write refused (not only lost races): stop rather than loop
                raise ElasticsearchError(f"could not remove feature {feature}: {result['items'][0]['index']}")
            freed += done

    def _bulk(self, actions: Iterable[dict[str, Any]], what: str, missing_ok: bool = False) -> int:
        """Run bulk actions; any failed item (bar a missing movie when allowed) fails the whole call."""
        written = 0
        errors: list[str] = []
        try:
            for ok, item in helpers.streaming_bulk(
                self._writer,
                actions,
                chunk_size=BULK_CHUNK,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=3,
                initial_backoff=1,
                max_backoff=8,
            ):
                result = next(iter(item.values()))
                if ok:
                    written += 1
                elif not (missing_ok and result.get("status") == 404):
                    errors.append(str(result.get("error", result))[:200])
        except _ERRORS as exc:
            raise ElasticsearchError(f"{what} failed: {exc}") from exc
        if errors:
            raise ElasticsearchError(f"{what} failed for {len(errors)} documents, e.g. {errors[0]}")
        return written

    # Reading ---------------------------------------------------------------------------------------

    def _registry(self, model_version: str) -> list[dict[str, Any]]:
        self.ensure_indices()
        response = self._call(
            self.client.search,
            index=self.registry_name,
            query={"term": {"model_version": model_version}},
            size=10_000,
            sort=[{"scored_at": "desc"}],
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def scored_labels(self, model_version: str) -> set[str]:
        return {entry["label"] for entry in self._registry(model_version)}

    def score_entries(self) -> list[ScoreEntry]:
        self.ensure_indices()
        response = self._call(
            self.client.search,
            index=self.registry_name,
            query={"match_all": {}},
            size=10_000,
            sort=[{"scored_at": "asc"}],
        )
        return [
            ScoreEntry(e["model_version"], e["label"], float(e["scored_at"]))
            for e in (hit["_source"] for hit in response["hits"]["hits"])
        ]

    def model_versions(self) -> list[str]:
        """Model versions with stored scores, most recently written first."""
        self.ensure_indices()
        aggs = {
            "versions": {
                "terms": {"field": "model_version", "size": 1000, "order": {"latest": "desc"}},
                "aggs": {"latest": {"max": {"field": "scored_at"}}},
            }
        }
        response = self._call(self.client.search, index=self.registry_name, size=0, aggs=aggs)
        return [bucket["key"] for bucket in response["aggregations"]["versions"]["buckets"]]

    def count(self) -> int:
        self.ensure_indices()
        return int(self._call(self.client.count, index=self.index_name)["count"])

    def movies(self) -> Iterator[Movie]:
        """Every indexed movie in id order (what a classifier fits on)."""
        self.ensure_indices()
        after: list[Any] | None = None
        while True:
            response = self._call(
                self.client.search,
                index=self.index_name,
                size=1000,
                sort=[{"id": "asc"}],
                source=["movie"],
                query={"match_all": {}},
                search_after=after,
            )
            hits = response["hits"]["hits"]
            for hit in hits:
                yield Movie.model_validate(hit["_source"]["movie"])
            if len(hits) < 1000:
                return
            after = hits[-1]["sort"]

    def genres(self) -> list[str]:
        self.ensure_indices()
        terms = {"field": "genres", "size": 1000, "order": {"_key": "asc"}}
        response = self._call(
            self.client.search, index=self.index_name, size=0, aggs={"genres": {"terms": terms}}
        )
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
        query = _ranking_query(text_query, max_text, genre_filter, features, request.boost_weight)
        response = self._call(
            self.client.search,
            index=self.index_name,
            query=query,
            sort=[{"_score": "desc"}, {"id": "asc"}],
            track_total_hits=True,
            # Only the requested labels' features come back, not every label the movie was ever scored for.
            source=["movie", *(f"trend.{feature}" for feature in features.values())],
            from_=offset,
            size=limit,
            include_named_queries_score=True,
        )
        hits = [_hit(hit, labels, features, max_text) for hit in response["hits"]["hits"]]
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
            # The best text score among the candidates: the normaliser that puts text_score in [0, 1].
            best = {
                "size": 1,
                "_source": False,
                "track_total_hits": False,
                "query": {"bool": {"must": [text_query], "filter": genre_filter}},
            }
            searches += [{"index": self.index_name}, best]
        if not searches:
            return {}, 0.0
        responses = self._call(self.client.msearch, searches=searches)["responses"]
        for response in responses:
            if "error" in response:
                self._ready = False  # e.g. an index deleted under us: recreate it on the next call
                raise ElasticsearchError(f"Elasticsearch at {self.url} failed: {response['error']}")
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

    def _refused(self, exc: ApiError) -> ElasticsearchError:
        return ElasticsearchError(
            f"Elasticsearch at {self.url} refused the credentials (HTTP {exc.meta.status}): give "
            "elasticsearch://user:password@host:port/index (scripts/elasticsearch.sh: elastic / "
            "$FRESHRANK_ELASTICSEARCH_PASSWORD)"
        )

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return self._breaker.call(method, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise ElasticsearchError(open_message(self._breaker, "Elasticsearch")) from exc
        except NotFoundError as exc:
            self._ready = False  # the index was deleted under us: recreate it on the next call
            raise ElasticsearchError(f"Elasticsearch index missing: {exc}") from exc
        except (AuthenticationException, AuthorizationException) as exc:
            raise self._refused(exc) from exc
        except ApiError as exc:
            raise ElasticsearchError(f"Elasticsearch at {self.url} failed: {exc}") from exc
        except TransportError as exc:
            raise ElasticsearchError(f"Elasticsearch at {self.url} unavailable: {_reason(exc)}") from exc


def _ranking_query(
    text_query: dict[str, Any] | None,
    max_text: float,
    genre_filter: list[dict[str, Any]],
    features: Mapping[str, str],
    weight: float,
) -> dict[str, Any]:
    # A term query on a sparse_vector field scores boost * stored value (Lucene's linear FeatureField query).
    boosts = (
        [{"term": {"trend": {"value": feature, "boost": float(weight)}}} for feature in features.values()]
        if weight > 0
        else []
    )
    must: list[dict[str, Any]] = []
    if text_query is not None and max_text > 0:
        must.append({"bool": {"must": [text_query], "boost": 1.0 / max_text, "_name": "text"}})
    # Without a scoring clause the filter must match everything, or the boosts would become required.
    filters = genre_filter or ([] if must else [{"match_all": {}}])
    return {"bool": {"must": must, "filter": filters, "should": boosts, "minimum_should_match": 0}}


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


def _reason(exc: TransportError) -> str:
    """One line saying what went wrong; a server that is down or hung is named as such."""
    if isinstance(exc, ConnectionTimeout):
        return "timed out (server overloaded or hung?)"
    if isinstance(exc, TransportConnectionError):
        return "server not reachable (is it running? `bash scripts/services.sh up elasticsearch`)"
    return str(exc)
