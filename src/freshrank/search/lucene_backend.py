"""The base of the OpenSearch and Elasticsearch backends: everything above their clients.

Search (window, text query, one ``msearch`` for the labels' features and the best text score, the ranking
query), publishing a label's scores (bulk, refresh, registry flip), removing a feature, indexing movies:
reading the registry, the movies and the genres: the same steps on both engines. A subclass gives its client
(``client``) and its calls (``_call``: the breaker and its own exception types; ``_search``, ``_msearch``,
``_bulk``, ``_bulk_lines``, ``_refresh``, ``_publish``), its feature query and boost clause
(``_feature_query``, ``_boost``) and its error class.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from freshrank.catalog.models import Movie
from freshrank.search import lucene
from freshrank.search.base import ScoreEntry, SearchPage, SearchRequest


class LuceneBackend(ABC):
    """A SearchBackend on a Lucene engine; subclasses bring the client."""

    error: type[Exception] = RuntimeError  # what every failure of this backend raises
    engine: str = "Lucene"  # the server's name in messages
    url: str
    client: Any  # the engine's Python client (opensearch-py's OpenSearch, elasticsearch-py's Elasticsearch)

    def _setup(self, index_name: str, field_weights: Mapping[str, float] | None) -> None:
        """The index names, the field weights (unknown fields refused), and no index checked yet."""
        self.index_name = index_name
        self.registry_name = f"{index_name}-labels"
        self.field_weights = {**lucene.DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(lucene.TEXT_FIELDS)
        if unknown:
            raise self.error(f"unknown search fields in field_weights: {sorted(unknown)}")
        self._ready = False

    # What a subclass gives ---------------------------------------------------------------------------

    @abstractmethod
    def ensure_indices(self) -> None:
        """Create the movie index and the registry when missing."""

    @abstractmethod
    def _bulk(self, actions: Iterable[dict[str, Any]], what: str, missing_ok: bool = False) -> int:
        """Run bulk actions; any failed item (bar a missing movie when allowed) fails the whole call."""

    @abstractmethod
    def _refresh(self) -> None:
        """Make the movie index's writes searchable."""

    @abstractmethod
    def _publish(self, key: str, entry: dict[str, Any]) -> None:
        """Write a registry entry, searchable when this returns."""

    @abstractmethod
    def _feature_query(self, feature: str) -> dict[str, Any]:
        """The query that matches the movies holding ``feature``."""

    @abstractmethod
    def _bulk_lines(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """One bulk request of raw lines, refreshed; the engine's answer."""

    @abstractmethod
    def _call(self, method: Any, **kwargs: Any) -> Any:
        """``method(**kwargs)`` through the circuit breaker, the client's failures raised as ``error``."""

    @abstractmethod
    def _expunge_deletes(self) -> None:
        """Merge away the segments' deleted documents (``_forcemerge?only_expunge_deletes=true``)."""

    @abstractmethod
    def _msearch(self, searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The answers of one ``msearch`` request."""

    @abstractmethod
    def _boost(self, feature: str, boost: float) -> dict[str, Any]:
        """The query clause that adds ``boost`` × the movie's value of ``feature``."""

    @abstractmethod
    def _search(self, index: str, body: dict[str, Any], named_scores: bool = False) -> dict[str, Any]:
        """The answer to a search request ``body`` (the REST API's keys) on ``index``; ``named_scores``: with
        each named query's score per hit."""

    # Writing ---------------------------------------------------------------------------------------

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies (partial updates keep their trend features); returns the count written."""
        self.ensure_indices()
        written = self._bulk(lucene.movie_actions(self.index_name, movies), what="indexing movies")
        self._refresh()
        return written

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Write one label's scores > 0 as a new generation, then publish it: all of them or none.

        One bulk of partial updates for the movies with a score > 0 (a zero adds nothing and a feature cannot
        hold one), one refresh of the movie index, then the registry entry: the refresh before the flip makes
        the new values searchable before any search can name them. A label whose every score is 0 writes no
        movie and is still published.
        """
        if not model_version or not label:
            raise ValueError("put_scores needs a model version and a label")
        given, positive = lucene.positive_scores(scores)
        self.ensure_indices()
        key = lucene.label_key(model_version, label)
        previous = self._published_feature(key)
        feature = lucene.new_feature(key)
        self._bulk(lucene.score_actions(self.index_name, feature, positive), f"scores of {label!r}", True)
        if positive:
            self._refresh()
        entry = {
            "model_version": model_version,
            "label": label,
            "feature": feature,
            "movies": given,
            "scored_at": time.time(),
        }
        self._publish(key, entry)
        if previous:  # the generation no search names any more goes (cut short: sweep_unpublished ends it)
            self._strip_feature(previous, lucene.BULK_CHUNK)

    def sweep_unpublished(self, older_than_s: float, batch: int = lucene.BULK_CHUNK) -> dict[str, int]:
        """Remove the features no registry entry names, started over ``older_than_s`` ago: what an interrupted
        ``put_scores`` (killed mid-bulk, or between the bulk and the registry flip) left on the movies, and a
        replaced generation whose removal was cut short. Younger ones may be a write in progress: kept."""
        self.ensure_indices()
        self._refresh()  # an interrupted bulk was never refreshed: make its writes searchable
        published = {e["feature"] for e in self._registry_entries({"match_all": {}}, "asc")}
        now = time.time()
        stored = self._stored_features()
        orphans = sorted(f for f in stored - published if lucene.feature_age(f, now) >= older_than_s)
        movies = sum(self._strip_feature(feature, batch) for feature in orphans)
        return {"features": len(orphans), "movies": movies}

    def _index_stats(self) -> dict[str, Any]:
        """The movie index's ``_stats`` (docs and store), totals over its shards."""
        stats = self._call(self.client.indices.stats, index=self.index_name, metric="docs,store")
        total: dict[str, Any] = stats["indices"][self.index_name]["total"]
        return total

    def stored_bytes(self) -> int:
        """Bytes of the movie index on disk (deleted documents included, until a merge drops them)."""
        return int(self._index_stats()["store"]["size_in_bytes"])

    def compact(self) -> int:
        """Drop the deleted documents every update leaves behind (Lucene rewrites a document to change it):
        retention's deletes then free space at once, instead of whenever the merge policy gets to them.
        Returns how many deleted documents there were."""
        deleted = int(self._index_stats()["docs"]["deleted"])
        if deleted:
            self._expunge_deletes()  # segments over 10 % deleted (the engines' expunge_deletes_allowed)
            self._refresh()  # the merged segments replace the old ones for readers
        return deleted

    def _stored_features(self) -> set[str]:
        """Every feature name on any movie (a scan of the ``trend`` fields, 1,000 movies per request)."""
        body: dict[str, Any] = {"size": 1000, "sort": [{"id": "asc"}], "_source": ["trend"]}
        body["query"] = {"match_all": {}}
        features: set[str] = set()
        while True:
            hits = self._search(self.index_name, body)["hits"]["hits"]
            for hit in hits:
                features.update((hit["_source"].get("trend") or {}).keys())
            if len(hits) < 1000:
                return features
            body["search_after"] = hits[-1]["sort"]

    def _published_feature(self, key: str) -> str:
        """The feature the registry names for ``key`` now ("" when none)."""
        entries = self._registry_entries({"ids": {"values": [key]}}, "desc")
        return str(entries[0]["feature"]) if entries else ""

    def _strip_feature(self, feature: str, batch: int) -> int:
        """Write every movie holding ``feature`` back without it, ``batch`` per bulk; returns movies."""
        freed = 0
        body = {
            "query": self._feature_query(feature),
            "size": max(1, int(batch)),
            "seq_no_primary_term": True,
        }
        while True:
            hits = self._search(self.index_name, body)["hits"]["hits"]
            if not hits:
                return freed
            result = self._bulk_lines(lucene.strip_feature_operations(self.index_name, feature, hits))
            done = lucene.stripped_count(result)
            if not done:  # every write refused (not only lost races): stop rather than loop
                raise self.error(f"could not remove feature {feature}: {result['items'][0]['index']}")
            freed += done

    # Reading ---------------------------------------------------------------------------------------

    def _registry_entries(self, query: dict[str, Any], order: str) -> list[dict[str, Any]]:
        """The registry entries ``query`` matches, by ``scored_at`` ``asc`` or ``desc``."""
        self.ensure_indices()
        body = {"query": query, "size": 10_000, "sort": [{"scored_at": order}]}
        return [hit["_source"] for hit in self._search(self.registry_name, body)["hits"]["hits"]]

    def scored_labels(self, model_version: str) -> set[str]:
        entries = self._registry_entries({"term": {"model_version": model_version}}, "desc")
        return {entry["label"] for entry in entries}

    def score_entries(self) -> list[ScoreEntry]:
        return [
            ScoreEntry(e["model_version"], e["label"], float(e["scored_at"]))
            for e in self._registry_entries({"match_all": {}}, "asc")
        ]

    def model_versions(self) -> list[str]:
        """Model versions with stored scores, most recently written first."""
        self.ensure_indices()
        latest = {"latest": {"max": {"field": "scored_at"}}}
        terms = {"field": "model_version", "size": 1000, "order": {"latest": "desc"}}
        body = {"size": 0, "aggs": {"versions": {"terms": terms, "aggs": latest}}}
        response = self._search(self.registry_name, body)
        return [bucket["key"] for bucket in response["aggregations"]["versions"]["buckets"]]

    def movies(self) -> Iterator[Movie]:
        """Every indexed movie in id order (what a classifier fits on)."""
        self.ensure_indices()
        body: dict[str, Any] = {"size": 1000, "sort": [{"id": "asc"}], "_source": ["movie"]}
        body["query"] = {"match_all": {}}
        while True:
            hits = self._search(self.index_name, body)["hits"]["hits"]
            for hit in hits:
                yield Movie.model_validate(hit["_source"]["movie"])
            if len(hits) < 1000:
                return
            body["search_after"] = hits[-1]["sort"]

    def genres(self) -> list[str]:
        self.ensure_indices()
        terms = {"field": "genres", "size": 1000, "order": {"_key": "asc"}}
        response = self._search(self.index_name, {"size": 0, "aggs": {"genres": {"terms": terms}}})
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
        weight, weights = float(request.boost_weight), request.weights()
        boosts = [
            self._boost(feature, boost)
            for label, feature in features.items()
            if (boost := weight * weights.get(label, 1.0)) > 0
        ]
        body = {
            "query": lucene.ranking_query(text, max_text, w.genre_filter, boosts),
            "sort": [{"_score": "desc"}, {"id": "asc"}],
            "track_total_hits": True,
            "_source": lucene.page_source(features),
            "from": w.offset,
            "size": w.limit,
        }
        response = self._search(self.index_name, body, named_scores=True)
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
        responses = self._msearch(searches)
        for response in responses:
            if "error" in response:
                self._ready = False  # e.g. an index deleted under us: recreate it on the next call
                raise self.error(f"{self.engine} at {self.url} failed: {response['error']}")
        return lucene.prepared(responses, bool(labels and model_version), text is not None)
