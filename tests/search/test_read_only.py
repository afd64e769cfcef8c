"""Search only reads: the service opens the SQLite index read-only, ranks from stored scores, and a label
without stored scores ranks without its boost (with a warning) instead of being classified and written."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.encoder import TorchEncoder
from freshrank.config import Settings
from freshrank.loop.service import ScoringLoop
from freshrank.search.service import SearchService
from freshrank.search.sqlite import SqliteBackend, sqlite_path
from tests.conftest import SMALL_MOVIES


def _digest(settings: Settings) -> str:
    """The index database and its write-ahead log, byte for byte."""
    path = Path(sqlite_path(settings.resolved_search_url))
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + "-wal")):
        digest.update(part.read_bytes() if part.exists() else b"")
    return digest.hexdigest()


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small index whose '#christmas' scores the loop has stored; the loop is closed afterwards."""
    root = tmp_path_factory.mktemp("read-only")
    settings = Settings(state_dir=root / "state")
    settings.search.calibration = "none"
    catalog = root / "movies.jsonl.gz"
    with gzip.open(catalog, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in SMALL_MOVIES)
    classifier = EmbeddingClassifier(encoder=TorchEncoder(), cache_dir=settings.cache_dir)
    loop = ScoringLoop.from_settings(settings)
    loop = ScoringLoop(settings, loop.backend, classifier=lambda: classifier)
    loop.load(catalog)
    assert loop.refresh(["#christmas"]).scored == ["christmas"]
    loop.backend.close()  # type: ignore[attr-defined]
    return settings


def test_search_opens_the_index_read_only_and_never_writes(scored: Settings) -> None:
    before = _digest(scored)
    service = SearchService.from_settings(scored)
    backend = service.backend
    assert isinstance(backend, SqliteBackend) and backend.read_only
    with pytest.raises(Exception, match="readonly"):  # the connection itself refuses writes
        backend.put_scores("v", "label", {1: 1.0})

    page = service.search(genre="Family", hashtags=["#christmas"], limit=3)
    assert page.hits and page.hits[0].trend_scores["christmas"] > 0
    made_up = service.search(genre="Family", hashtags=["#christmas", "#zorblaxfest"], limit=3)
    assert [h.id for h in made_up.hits] == [h.id for h in page.hits]  # ranked without the new label's boost
    assert any("zorblaxfest" in w for w in made_up.warnings)
    assert all(hit.trend_scores["zorblaxfest"] == 0.0 for hit in made_up.hits)
    service.search(text="santa")  # the current trends: none published, no boost
    assert _digest(scored) == before


def test_adhoc_scores_boost_like_stored_ones(scored: Settings) -> None:
    """In-memory scores of a label rank exactly as the same scores stored in the index do."""
    service = SearchService.from_settings(scored)
    version = service.version(["christmas"], [])
    stored = service.search(hashtags=["#christmas"], limit=8)
    adhoc = {"christmas": {h.id: h.trend_scores["christmas"] for h in stored.hits}}
    other = SearchService(scored, service.backend, model_version=lambda _w: version + "-none")
    again = other.search(hashtags=["#christmas"], limit=8, adhoc=adhoc)
    assert [h.id for h in again.hits] == [h.id for h in stored.hits]
    assert [h.score for h in again.hits] == pytest.approx([h.score for h in stored.hits])
    assert not any("not scored" in w for w in again.warnings)
    page_two = other.search(hashtags=["#christmas"], limit=3, offset=3, adhoc=adhoc)
    assert [h.id for h in page_two.hits] == [h.id for h in stored.hits[3:6]]
