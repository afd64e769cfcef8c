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
from collections.abc import Iterable, Mapping
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

from freshrank.search import lucene
from freshrank.search.breaker import RESET_S, breaker_for, open_message
from freshrank.search.lucene_backend import LuceneBackend

log = logging.getLogger(__name__)

DEFAULT_PORT = 9201  # scripts/elasticsearch.sh; OpenSearch keeps 9200
_ERRORS = (ApiError, TransportError)
_MOVIE_MAPPING = lucene.movie_mapping("sparse_vector")
_KWARGS = {"_source": "source", "from": "from_"}  # request body keys the client takes by another name


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


class ElasticsearchBackend(LuceneBackend):
    """SearchBackend on an Elasticsearch 8 cluster."""

    name = "elasticsearch"
    engine = "Elasticsearch"
    error = ElasticsearchError

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = lucene.REQUEST_TIMEOUT,
        client: Elasticsearch | None = None,
        write_timeout: float = lucene.WRITE_TIMEOUT,
        breaker_reset: float = RESET_S,
    ) -> None:
        base, auth, index_name = parse_url(url)
        self.url = url.replace(f"{auth[1]}@", "***@") if auth and auth[1] else url  # for messages
        self._setup(index_name, field_weights)
        self.client = client or Elasticsearch(
            hosts=[base],
            basic_auth=auth,
            request_timeout=timeout,
            max_retries=1,
            retry_on_timeout=False,
            http_compress=lucene.compress(base),
            connections_per_node=lucene.CONNECTIONS,
        )
        self.timeout, self.write_timeout = timeout, write_timeout
        self._writer = self.client.options(request_timeout=write_timeout)  # bulk, refresh, index admin
        self._breaker = breaker_for(base, (TransportConnectionError, ConnectionTimeout), breaker_reset)

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

    def _refresh(self) -> None:
        self._call(self._writer.indices.refresh, index=self.index_name)

    def _publish(self, key: str, entry: dict[str, Any]) -> None:
        try:
            self._writer.index(index=self.registry_name, id=key, document=entry, refresh=True)
        except _ERRORS as exc:
            raise ElasticsearchError(f"could not publish the scores of {entry['label']!r}: {exc}") from exc

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

    def _feature_query(self, feature: str) -> dict[str, Any]:
        return {"term": {"trend": {"value": feature}}}

    def _bulk_lines(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(self.client.bulk, operations=lines, refresh=True)
        return result

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

    def count(self) -> int:
        self.ensure_indices()
        return int(self._call(self.client.count, index=self.index_name)["count"])

    def _boost(self, feature: str, boost: float) -> dict[str, Any]:
        # A term query on a sparse_vector field scores boost * stored value (Lucene's linear FeatureField).
        return {"term": {"trend": {"value": feature, "boost": boost}}}

    def _search(self, index: str, body: dict[str, Any], named_scores: bool = False) -> dict[str, Any]:
        kwargs = {_KWARGS.get(key, key): value for key, value in body.items()}
        if named_scores:
            kwargs["include_named_queries_score"] = True
        response: dict[str, Any] = self._call(self.client.search, index=index, **kwargs)
        return response

    def _expunge_deletes(self) -> None:
        self._call(self._writer.indices.forcemerge, index=self.index_name, only_expunge_deletes=True)

    def _msearch(self, searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = self._call(self.client.msearch, searches=searches)["responses"]
        return responses

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
