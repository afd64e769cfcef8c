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

import logging
import time
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
from freshrank.search import lucene
from freshrank.search.base import ScoreEntry, SearchPage, SearchRequest
from freshrank.search.breaker import breaker_for, open_message

log = logging.getLogger(__name__)

_MOVIE_MAPPING = lucene.movie_mapping("rank_features")


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
    index = lucene.index_name(parts.path.strip("/") or lucene.DEFAULT_INDEX, OpenSearchError)
    return f"{scheme}://{auth}{parts.hostname}:{port}", index


class OpenSearchBackend:
    """SearchBackend on an OpenSearch (or Elasticsearch-compatible) cluster."""

    name = "opensearch"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = lucene.REQUEST_TIMEOUT,
        client: OpenSearch | None = None,
    ) -> None:
        self.url = url
        base, self.index_name = parse_url(url)
        self.registry_name = f"{self.index_name}-labels"
        self.field_weights = {**lucene.DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(lucene.TEXT_FIELDS)
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
        self._create(self.index_name, {"settings": lucene.movie_index_settings(), "mappings": _MOVIE_MAPPING})
        self._create(
            self.registry_name, {"settings": lucene.SMALL_INDEX, "mappings": lucene.REGISTRY_MAPPING}
        )
        self._ready = True

    def _create(self, name: str, body: dict[str, Any]) -> None:
        try:
            if self.client.indices.exists(index=name):
                return
            self.client.indices.create(index=name, body=body, request_timeout=lucene.WRITE_TIMEOUT)
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise OpenSearchError(f"cannot create index {name}: {exc}") from exc
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} unavailable: {self._reason(exc)}") from exc

    def drop(self) -> None:
        """Delete both indices (tests and `freshrank` resets)."""
        self.client.indices.delete(
            index=f"{self.index_name},{self.registry_name}",
            ignore=[404],
            request_timeout=lucene.WRITE_TIMEOUT,
        )
        self._ready = False

    # Writing ---------------------------------------------------------------------------------------

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies (partial updates keep their trend features); returns the count written."""
        self.ensure_indices()
        written = self._bulk(lucene.movie_actions(self.index_name, movies), what="indexing movies")
        self._call(self.client.indices.refresh, index=self.index_name, request_timeout=lucene.WRITE_TIMEOUT)
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
        given, positive = lucene.positive_scores(scores)
        self.ensure_indices()
        feature = f"{lucene.label_key(model_version, label)}_{uuid.uuid4().hex[:8]}"
        actions = lucene.score_actions(self.index_name, feature, positive)
        self._bulk(actions, what=f"scores of {label!r}", missing_ok=True)
        if positive:
            self._call(
                self.client.indices.refresh, index=self.index_name, request_timeout=lucene.WRITE_TIMEOUT
            )
        entry = {
            "model_version": model_version,
            "label": label,
            "feature": feature,
            "movies": given,
            "scored_at": time.time(),
        }
        try:
            self.client.index(
                request_timeout=lucene.WRITE_TIMEOUT,
                index=self.registry_name,
                id=lucene.label_key(model_version, label),
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
        key = lucene.label_key(model_version, label)
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
            lines = lucene.strip_feature_operations(self.index_name, feature, hits)
            result = self._call(self.client.bulk, body=lines, params={"refresh": "true"})
            done = lucene.stripped_count(result)
            if not done:  # every write refused (not only lost races): stop rather than loop
                raise OpenSearchError(f"could not remove feature {feature}: {result['items'][0]['index']}")
            freed += done

    def _bulk(self, actions: Iterable[dict[str, Any]], what: str, missing_ok: bool = False) -> int:
        """Run bulk actions; any failed item (bar a missing movie when allowed) fails the whole call."""
        try:
            results = helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=lucene.BULK_CHUNK,
                raise_on_error=False,
                max_retries=3,
                initial_backoff=1,
                max_backoff=8,
                request_timeout=lucene.WRITE_TIMEOUT,
            )
            written, errors = lucene.bulk_outcome(results, missing_ok)
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
        w = lucene.Window(request)
        if w.no_words:
            return SearchPage(hits=[], total=0, warnings=w.warnings)
        text = lucene.text_query(w.terms, self.field_weights)
        features, max_text = self._prepare(request.model_version, w.labels, text, w.genre_filter)
        if text and max_text <= 0:
            return SearchPage(hits=[], total=0, warnings=w.warnings)  # no candidate matches the text
        weights = request.weights()
        boosts = [
            {"rank_feature": {"field": f"trend.{feature}", "linear": {}, "boost": boost}}
            for label, feature in features.items()
            if (boost := float(request.boost_weight) * weights.get(label, 1.0)) > 0
        ]
        body = {
            "query": lucene.ranking_query(text, max_text, w.genre_filter, boosts),
            "sort": [{"_score": "desc"}, {"id": "asc"}],
            "track_total_hits": True,
            "_source": lucene.page_source(features),
            "from": w.offset,
            "size": w.limit,
        }
        response = self._call(
            self.client.search,
            index=self.index_name,
            body=body,
            params={"include_named_queries_score": "true"},
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
        responses = self._call(self.client.msearch, body=searches)["responses"]
        for response in responses:
            if "error" in response:
                self._ready = False  # e.g. an index deleted under us: recreate it on the next call
                raise OpenSearchError(f"OpenSearch at {self.url} failed: {response['error']}")
        return lucene.prepared(responses, bool(labels and model_version), text is not None)

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
