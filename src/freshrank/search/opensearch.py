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
from collections.abc import Iterable, Mapping
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

from freshrank.search import lucene
from freshrank.search.breaker import RESET_S, breaker_for, open_message
from freshrank.search.lucene_backend import LuceneBackend

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


class OpenSearchBackend(LuceneBackend):
    """SearchBackend on an OpenSearch (or Elasticsearch-compatible) cluster."""

    name = "opensearch"
    engine = "OpenSearch"
    error = OpenSearchError

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        timeout: float = lucene.REQUEST_TIMEOUT,
        client: OpenSearch | None = None,
        write_timeout: float = lucene.WRITE_TIMEOUT,
        breaker_reset: float = RESET_S,
    ) -> None:
        self.url = url
        base, index_name = parse_url(url)
        self._setup(index_name, field_weights)
        self.client = client or OpenSearch(
            hosts=[base],
            timeout=timeout,
            max_retries=1,
            retry_on_timeout=False,
            http_compress=lucene.compress(base),
            pool_maxsize=lucene.CONNECTIONS,
        )
        self.timeout = timeout
        self.write_timeout = write_timeout
        # ConnectionTimeout included:
        self._breaker = breaker_for(base, (OpenSearchConnectionError,), breaker_reset)

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
            self.client.indices.create(index=name, body=body, request_timeout=self.write_timeout)
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
            request_timeout=self.write_timeout,
        )
        self._ready = False

    # Writing ---------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._call(self.client.indices.refresh, index=self.index_name, request_timeout=self.write_timeout)

    def _publish(self, key: str, entry: dict[str, Any]) -> None:
        try:
            self.client.index(
                request_timeout=self.write_timeout,
                index=self.registry_name,
                id=key,
                body=entry,
                refresh=True,
            )
        except OpenSearchException as exc:
            raise OpenSearchError(f"could not publish the scores of {entry['label']!r}: {exc}") from exc

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
        freed = self._strip_feature(source["feature"], batch) if source else 0
        try:
            self.client.delete(index=self.registry_name, id=key, params={"refresh": "true"})
        except NotFoundError:
            pass
        except OpenSearchException as exc:
            raise OpenSearchError(f"OpenSearch at {self.url} failed: {exc}") from exc
        return freed

    def _feature_query(self, feature: str) -> dict[str, Any]:
        return {"rank_feature": {"field": f"trend.{feature}"}}

    def _bulk_lines(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(self.client.bulk, body=lines, params={"refresh": "true"})
        return result

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
                request_timeout=self.write_timeout,
            )
            written, errors = lucene.bulk_outcome(results, missing_ok)
        except OpenSearchException as exc:
            raise OpenSearchError(f"{what} failed: {self._reason(exc)}") from exc
        if errors:
            raise OpenSearchError(f"{what} failed for {len(errors)} documents, e.g. {errors[0]}")
        return written

    # Reading ---------------------------------------------------------------------------------------

    def count(self) -> int:
        self.ensure_indices()
        return int(self._call(self.client.count, index=self.index_name)["count"])

    def _boost(self, feature: str, boost: float) -> dict[str, Any]:
        return {"rank_feature": {"field": f"trend.{feature}", "linear": {}, "boost": boost}}

    def _search(self, index: str, body: dict[str, Any], named_scores: bool = False) -> dict[str, Any]:
        params = {"include_named_queries_score": "true"} if named_scores else {}
        response: dict[str, Any] = self._call(self.client.search, index=index, body=body, params=params)
        return response

    def _expunge_deletes(self) -> None:
        params = {"only_expunge_deletes": "true"}
        self._call(
            self.client.indices.forcemerge,
            index=self.index_name,
            params=params,
            request_timeout=self.write_timeout,
        )

    def _msearch(self, searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = self._call(self.client.msearch, body=searches)["responses"]
        return responses

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
