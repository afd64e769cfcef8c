"""Retention of trend scores: what stopped trending, and retired model versions, are deleted.

A label's scores are deleted once it has not trended for ``retention.label_days`` (its last sighting is kept
in a small SQLite table in the state directory, ``labels_seen.db``; a label never seen there counts from when
it was scored). A scores version is deleted unless it is the current one or one of the
``retention.keep_versions`` most recently written others (the previous champion, a candidate). Labels
trending now are never deleted.
Deletes run in small transactions (``retention.delete_batch`` rows), so searches never wait for them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from freshrank.config import RetentionSettings
from freshrank.search.base import ScoreEntry, SearchBackend

log = logging.getLogger(__name__)

SEEN_FILE = "labels_seen.db"
DAY = 86_400.0


class LabelClock:
    """When each label was last seen trending (one row per label, forgotten with its scores)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS label_seen"
            " (label TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID"
        )

    def touch(self, labels: Iterable[str], at: float | None = None) -> None:
        now = time.time() if at is None else at
        rows = [(label, now) for label in dict.fromkeys(labels) if label]
        if rows:
            self._db.executemany(
                "INSERT INTO label_seen (label, seen_at) VALUES (?, ?) ON CONFLICT(label)"
                " DO UPDATE SET seen_at = MAX(seen_at, excluded.seen_at)",
                rows,
            )

    def last_seen(self) -> dict[str, float]:
        return {label: float(at) for label, at in self._db.execute("SELECT label, seen_at FROM label_seen")}

    def forget_before(self, cutoff: float) -> int:
        """Drop sightings older than ``cutoff`` (their scores are gone too): the clock stays bounded."""
        return int(self._db.execute("DELETE FROM label_seen WHERE seen_at < ?", (cutoff,)).rowcount)

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Doomed:
    """A stored (version, label) to delete, and why."""

    entry: ScoreEntry
    reason: str


def plan(
    entries: Sequence[ScoreEntry],
    last_seen: dict[str, float],
    current_version: str,
    trending: Iterable[str],
    policy: RetentionSettings,
    now: float,
) -> list[Doomed]:
    """Which entries retention deletes; an unknown current version deletes no version (labels only)."""
    now_trending = set(trending)
    kept_versions = _kept_versions(entries, current_version, policy.keep_versions)
    cutoff = now - policy.label_days * DAY
    doomed = []
    for entry in entries:
        if kept_versions is not None and entry.model_version not in kept_versions:
            doomed.append(Doomed(entry, "model version retired"))
        elif (
            entry.label not in now_trending and max(last_seen.get(entry.label, 0.0), entry.scored_at) < cutoff
        ):
            doomed.append(Doomed(entry, f"not trending for {policy.label_days:g} days"))
    return doomed


def _kept_versions(entries: Sequence[ScoreEntry], current: str, keep: int) -> set[str] | None:
    if not current:
        return None
    latest: dict[str, float] = {}
    for entry in entries:
        latest[entry.model_version] = max(latest.get(entry.model_version, 0.0), entry.scored_at)
    others = sorted((v for v in latest if v != current), key=lambda v: latest[v], reverse=True)
    return {current, *others[:keep]}


@dataclass
class GcReport:
    """What one retention pass found and freed."""

    entries: int = 0  # stored (version, label) entries before
    deleted: list[dict[str, Any]] = field(default_factory=list)  # {model_version, label, reason, rows}
    rows: int = 0  # score rows (SQLite) or movie documents (OpenSearch, Elasticsearch) freed
    swept: dict[str, int] = field(default_factory=dict)  # Lucene: {features, movies} of interrupted writes
    compacted: int = 0  # Lucene: deleted documents merged away after the deletes
    bytes_before: int | None = None  # SQLite: bytes in use in the database file
    bytes_after: int | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(
    backend: SearchBackend, doomed: Sequence[Doomed], batch: int, entries: int, sweep_after_s: float = 600.0
) -> GcReport:
    """Sweep what interrupted writes left, then delete the doomed entries one by one; a failure is reported
    and the rest still tried."""
    started = time.perf_counter()
    report = GcReport(entries=entries, bytes_before=_stored_bytes(backend))
    report.swept = _sweep(backend, sweep_after_s, batch, report.errors)
    for item in doomed:
        entry = item.entry
        try:
            rows = backend.delete_scores(entry.model_version, entry.label, batch)
        except Exception as exc:  # a server that fails mid-way: the next pass finishes the entry
            log.warning("retention: could not delete %r of %s: %s", entry.label, entry.model_version, exc)
            report.errors.append(f"{entry.model_version}/{entry.label[:60]}: {str(exc)[:200]}")
            continue
        report.rows += rows
        report.deleted.append(
            {"model_version": entry.model_version, "label": entry.label, "reason": item.reason, "rows": rows}
        )
    if report.deleted or report.swept.get("features"):
        report.compacted = _compact(backend, report.errors)
    report.bytes_after = _stored_bytes(backend)
    report.seconds = time.perf_counter() - started
    return report


def _sweep(backend: SearchBackend, older_than_s: float, batch: int, errors: list[str]) -> dict[str, int]:
    """Remove unpublished features (OpenSearch, Elasticsearch; SQLite writes a label in one transaction)."""
    sweep = getattr(backend, "sweep_unpublished", None)
    if not callable(sweep):
        return {}
    try:
        return dict(sweep(older_than_s, batch))
    except Exception as exc:  # the next pass tries again
        log.warning("retention: could not sweep unpublished scores: %s", exc)
        errors.append(f"sweep: {str(exc)[:200]}")
        return {}


def _compact(backend: SearchBackend, errors: list[str]) -> int:
    """Merge away the deleted documents the deletes left (OpenSearch, Elasticsearch); 0 elsewhere."""
    compact = getattr(backend, "compact", None)
    if not callable(compact):
        return 0
    try:
        return int(compact())
    except Exception as exc:  # the engine's own merges get to them later
        log.warning("retention: could not compact the index: %s", exc)
        errors.append(f"compact: {str(exc)[:200]}")
        return 0


def _stored_bytes(backend: SearchBackend) -> int | None:
    measure = getattr(backend, "stored_bytes", None)
    if not callable(measure):
        return None
    try:
        return int(measure())
    except Exception as exc:  # a figure of the report, not a reason to fail the pass
        log.warning("retention: could not measure the index: %s", exc)
        return None


def prune_cache(cache_dir: Path, max_age_s: float, now: float | None = None) -> dict[str, int]:
    """Delete encoded catalogues (``emb-*.npy``) not used for ``max_age_s``; what was freed."""
    cutoff = (time.time() if now is None else now) - max_age_s
    files = freed = 0
    for path in sorted(cache_dir.glob("emb-*.npy")) if cache_dir.is_dir() else []:
        try:
            stat = path.stat()
            if stat.st_mtime < cutoff:
                path.unlink()
                files, freed = files + 1, freed + stat.st_size
        except OSError as exc:  # another process deleted or replaced it meanwhile
            log.debug("cache file %s: %s", path, exc)
    return {"cache_files": files, "cache_bytes": freed}
