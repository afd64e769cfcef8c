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
from freshrank.search import lucene
from freshrank.search.base import ScoreEntry, SearchPage, SearchRequest
from freshrank.search.breaker import breaker_for, open_message

log = logging.getLogger(__name__)

DEFAULT_PORT = 9201  # scripts/elasticsearch.sh; OpenSearch keeps 9200
_ERRORS = (ApiError, TransportError)
_MOVIE_MAPPING = lucene.movie_mapping("sparse_vector")


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
    index = lucene.index_name(parts.path.strip("/") or lucene.DEFAULT_INDEX, ElasticsearchError)
    return f"{scheme}://{parts.hostname}:{parts.port or DEFAULT_PORT}", auth, index


class ElasticsearchBackend:
    """SearchBackend on an Elasticsearch 8 cluster."""

    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = lucene.REQUEST_TIMEOUT,
        client: Elasticsearch | None = None,
    ) -> None:
        base, auth, self.index_name = parse_url(url)
        self.url = url.replace(f"{auth[1]}@", "***@") if auth and auth[1] else url  # for messages
        self.registry_name = f"{self.index_name}-labels"
        self.field_weights = {**lucene.DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(lucene.TEXT_FIELDS)
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
        self._writer = self.client.options(request_timeout=lucene.WRITE_TIMEOUT)  # bulk, refresh, index admin
        self._breaker = breaker_for(base, (TransportConnectionError, ConnectionTimeout))
        self._ready = False

    def close(self) -> None:
        self.client.close()

    # Index management ------------------------------------------------------------------------------

    def ensure_indices(self) -> None:
        """Create the movie index and the registry when missing (idempotent, safe to race)."""
        if self._ready:
            return
        self._create(self.index_name, lucene.movie_index_settings(), _MOVIE_MAPPING)
        self._create(self.registry_name, lucene.SMALL_INDEX, lucene.REGISTRY_MAPPING)
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
        written = self._bulk(lucene.movie_actions(self.index_name, movies), what="indexing movies")
        self._call(self._writer.indices.refresh, index=self.index_name)
        return written

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Write one label's scores > 0 as a new generation, then publish it: all of them or none."""
        if not model_version or not label:
            raise ValueError("put_scores needs a model version and a label")
        given, positive = lucene.positive_scores(scores)
        self.ensure_indices()
        feature = f"{lucene.label_key(model_version, label)}_{uuid.uuid4().hex[:8]}"
        actions = lucene.score_actions(self.index_name, feature, positive)
        self._bulk(actions, what=f"scores of {label!r}", missing_ok=True)
        if positive:  # the refresh before the registry flip makes the values searchable first
            self._call(self._writer.indices.refresh, index=self.index_name)
        entry = {
            "model_version": model_version,
            "label": label,
            "feature": feature,
            "movies": given,
            "scored_at": time.time(),
        }
        try:
            self._writer.index(
                index=self.registry_name,
                id=lucene.label_key(model_version, label),
                document=entry,
                refresh=True,
            )
        except _ERRORS as exc:
            raise ElasticsearchError(f"could not publish the scores of {label!r}: {exc}") from exc

    def delete_scores(self, model_version: str, label: str, batch: int = 2_000) -> int:
        """Remove one label's features, ``batch`` movies per bulk, then its registry entry; returns movies.

        No scripting on the integ-test distribution: each movie is read and written back without the
        feature, guarded by its sequence number (a concurrent write wins and the movie is read again).
        """
        self.ensure_indices()
        key = lucene.label_key(model_version, label)
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
            operations = lucene.strip_feature_operations(self.index_name, feature, hits)
            result = self._call(self.client.bulk, operations=operations, refresh=True)
            done = lucene.stripped_count(result)
            if not done:  # every write refused (not only lost races): stop rather than loop
                raise ElasticsearchError(f"could not remove feature {feature}: {result['items'][0]['index']}")
            freed += done

    def _bulk(self, actions: Iterable[dict[str, Any]], what: str, missing_ok: bool = False) -> int:
        """Run bulk actions; any failed item (bar a missing movie when allowed) fails the whole call."""
        try:
            results = helpers.streaming_bulk(
                self._writer,
                actions,
                chunk_size=lucene.BULK_CHUNK,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=3,
                initial_backoff=1,
                max_backoff=8,
            )
            written, errors = lucene.bulk_outcome(results, missing_ok)
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
        w = lucene.Window(request)
        if w.no_words:
            return SearchPage(hits=[], total=0, warnings=w.warnings)
        text = lucene.text_query(w.terms, self.field_weights)
        features, max_text = self._prepare(request.model_version, w.labels, text, w.genre_filter)
        if text and max_text <= 0:
            return SearchPage(hits=[], total=0, warnings=w.warnings)  # no candidate matches the text
        # A term query on a sparse_vector field scores boost * stored value (Lucene's linear FeatureField).
        weight, weights = float(request.boost_weight), request.weights()
        boosts = [
            {"term": {"trend": {"value": f, "boost": boost}}}
            for label, f in features.items()
            if (boost := weight * weights.get(label, 1.0)) > 0
        ]
        response = self._call(
            self.client.search,
            index=self.index_name,
            query=lucene.ranking_query(text, max_text, w.genre_filter, boosts),
            sort=[{"_score": "desc"}, {"id": "asc"}],
            track_total_hits=True,
            source=lucene.page_source(features),
            from_=w.offset,
            size=w.limit,
            include_named_queries_score=True,
        )
        hits = [lucene.hit_of(hit, w.labels, features, max_text) for hit in response["hits"]["hits"]]
        return SearchPage(hits=hits, total=int(response["hits"]["total"]["value"]), warnings=w.warnings)

    def _prepare(
        self,
        model_version: str,
        labels: Sequence[str],
        text: dict[str, Any] | None,
        genre_filter: list[dict[str, Any]],
    ) -> tuple[dict[str, str], float]:
        """The labels' published features and the best text score, in one round trip (``msearch``)."""
        searches = lucene.prepare_searches(
            self.index_name, self.registry_name, model_version, labels, text, genre_filter
        )
        if not searches:
            return {}, 0.0
        responses = self._call(self.client.msearch, searches=searches)["responses"]
        for response in responses:
            if "error" in response:
                self._ready = False  # e.g. an index deleted under us: recreate it on the next call
                raise ElasticsearchError(f"Elasticsearch at {self.url} failed: {response['error']}")
        return lucene.prepared(responses, bool(labels and model_version), text is not None)

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


def _reason(exc: TransportError) -> str:
    """One line saying what went wrong; a server that is down or hung is named as such."""
    if isinstance(exc, ConnectionTimeout):
        return "timed out (server overloaded or hung?)"
    if isinstance(exc, TransportConnectionError):
        return "server not reachable (is it running? `bash scripts/services.sh up elasticsearch`)"
    return str(exc)
