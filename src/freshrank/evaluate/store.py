"""The judgments store on SQLAlchemy 2: SQLite (default), MySQL/MariaDB or PostgreSQL, picked by URL.

Opening a store runs the Alembic migrations shipped in ``freshrank/evaluate/migrations`` up to head, so a new
database (or an old one after an upgrade) is ready without a separate step. Every statement is parameterised.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pybreaker
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from freshrank import breakers
from freshrank.config import JudgmentStoreSettings
from freshrank.evaluate.base import (
    MAX_GENRE_CHARS,
    MAX_TREND_CHARS,
    MAX_WHO_CHARS,
    ConflictError,
    EvaluationRun,
    ImportResult,
    Judgment,
    JudgmentChange,
    OnConflict,
    Qrels,
    QueryId,
)
from freshrank.exitcodes import Unreachable

log = logging.getLogger(__name__)
MIN_GRADE, MAX_GRADE = 0, 3  # as the API and the shared files: 0 not relevant .. 3 perfect
MAX_DOC_ID = 2**63 - 1  # BIGINT
MIGRATIONS = Path(__file__).parent / "migrations"
# MySQL client errors that say the server did not answer: can't connect, gone away, lost during a query, …
MYSQL_NO_ANSWER = frozenset({2003, 2006, 2013, 2014, 2045, 2055})
P = ParamSpec("P")
R = TypeVar("R")


class StoreUnavailable(Unreachable):
    """The database behind a judgments URL cannot be reached or opened."""


class ServerUnreachable(StoreUnavailable):
    """No answer from the database server (refused, lost, timed out): what opens its circuit breaker."""


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Run a store method through the store's circuit breaker, database errors as StoreUnavailable."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, SqlJudgmentStore)
        return store.call(method, *args, **kwargs)

    return call


@dataclass(frozen=True)
class _Tables:
    judgments: sa.Table
    changes: sa.Table
    runs: sa.Table


def _tables(prefix: str) -> _Tables:
    """Table objects matching the migrations (the migrations own the DDL; these only address the tables)."""
    meta = sa.MetaData()
    judgments = sa.Table(
        f"{prefix}judgments",
        meta,
        sa.Column("trend", sa.String(MAX_TREND_CHARS), primary_key=True),
        sa.Column("genre", sa.String(MAX_GENRE_CHARS), primary_key=True),
        sa.Column("doc_id", sa.BigInteger, primary_key=True),
        sa.Column("grade", sa.Integer),
        sa.Column("updated_by", sa.String(MAX_WHO_CHARS)),
        sa.Column("updated_at", sa.DateTime),
    )
    changes = sa.Table(
        f"{prefix}judgment_changes",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trend", sa.String(MAX_TREND_CHARS)),
        sa.Column("genre", sa.String(MAX_GENRE_CHARS)),
        sa.Column("doc_id", sa.BigInteger),
        sa.Column("old_grade", sa.Integer),
        sa.Column("new_grade", sa.Integer),
        sa.Column("who", sa.String(MAX_WHO_CHARS)),
        sa.Column("at", sa.DateTime),
        sa.Column("source", sa.String(500)),
    )
    runs = sa.Table(
        f"{prefix}evaluation_runs",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime),
        sa.Column("kind", sa.String(20)),
        sa.Column("classifier", sa.String(200)),
        sa.Column("model_version", sa.String(200)),
        sa.Column("catalog_size", sa.Integer),
        *(
            sa.Column(name, sa.JSON)
            for name in ("params", "trends", "mean", "baseline_mean", "per_query", "details")
        ),
    )
    return _Tables(judgments, changes, runs)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def validate(judgment: Judgment) -> Judgment:
    """The judgment with trimmed text, or ValueError saying what is wrong with it."""
    trend, genre = judgment.trend.strip(), judgment.genre.strip()
    if not trend:
        raise ValueError("empty trend")
    if len(trend) > MAX_TREND_CHARS:
        raise ValueError(f"trend longer than {MAX_TREND_CHARS} characters ({len(trend)}): {trend[:40]!r}…")
    if len(genre) > MAX_GENRE_CHARS:
        raise ValueError(f"genre longer than {MAX_GENRE_CHARS} characters: {genre[:40]!r}…")
    if any(ord(ch) < 32 for ch in trend + genre):
        raise ValueError(f"control characters in trend or genre: {trend[:40]!r}")
    doc_id, grade = judgment.doc_id, judgment.grade
    if isinstance(doc_id, bool) or not isinstance(doc_id, int) or not 0 <= doc_id <= MAX_DOC_ID:
        raise ValueError(f"doc_id must be an integer in 0..2^63-1, got {str(doc_id)[:40]}")
    if isinstance(grade, bool) or not isinstance(grade, int) or not MIN_GRADE <= grade <= MAX_GRADE:
        raise ValueError(f"grade must be an integer in {MIN_GRADE}..{MAX_GRADE}, got {str(grade)[:40]}")
    return Judgment(trend, genre, judgment.doc_id, judgment.grade)


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


class SqlJudgmentStore:
    """:class:`~freshrank.evaluate.base.JudgmentStore` on any SQLAlchemy database.

    ``table_prefix`` namespaces the tables (and the Alembic version table), so several stores — or
    concurrent test runs — can share one database.
    """

    def __init__(
        self, engine: Engine, table_prefix: str = "", breaker: pybreaker.CircuitBreaker | None = None
    ) -> None:
        self.engine = engine
        self.prefix = table_prefix
        self.t = _tables(table_prefix)
        self.breaker = breaker  # None on SQLite: a local file has no server to hang
        self.migrate()

    def call(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``method`` through the circuit breaker: an open circuit fails at once with StoreUnavailable."""
        if self.breaker is None:
            return self._translated(method, *args, **kwargs)
        try:
            return self.breaker.call(self._translated, method, *args, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise StoreUnavailable(breakers.open_message(self.breaker, "judgments store")) from exc

    def _translated(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DBAPIError as exc:
            if not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                raise  # e.g. an integrity error: the server answered
            reason = str(exc.orig).splitlines()[0][:300] if exc.orig is not None else str(exc)[:300]
            error = ServerUnreachable if _no_answer(exc) else StoreUnavailable
            raise error(f"judgments store {safe_url(self.engine.url)} unavailable: {reason}") from exc

    @_guarded
    def migrate(self) -> None:
        """Upgrade the schema to the newest migration (a no-op when it is current)."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # before the import: it logs its plugins
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["table_prefix"] = self.prefix
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    def drop(self) -> None:
        """Remove this store's tables (tests and ``--reset`` only)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["table_prefix"] = self.prefix
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.prefix}alembic_version"))

    # Judgments ------------------------------------------------------------------------------------

    def _stored(self, conn: Connection, trend: str, genre: str) -> dict[int, int]:
        t = self.t.judgments
        rows = conn.execute(sa.select(t.c.doc_id, t.c.grade).where(t.c.trend == trend, t.c.genre == genre))
        return {int(doc): int(grade) for doc, grade in rows}

    @_guarded
    def add(
        self,
        judgments: Iterable[Judgment],
        who: str = "import",
        source: str = "",
        on_conflict: OnConflict = "update",
    ) -> ImportResult:
        """Insert new judgments and, per ``on_conflict``, change (``update``), leave (``keep``) or refuse
        (``fail``: nothing written) stored grades that differ. One transaction; each change is logged."""
        if on_conflict not in ("update", "keep", "fail"):
            raise ValueError(f"on_conflict must be update, keep or fail, not {on_conflict!r}")
        who, source, at = who.strip()[:MAX_WHO_CHARS] or "unknown", source[:500], _now()
        incoming = [validate(j) for j in judgments]
        result = ImportResult()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        audit: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            state: dict[tuple[str, str], dict[int, int]] = {}
            for j in incoming:
                if (j.trend, j.genre) not in state:
                    state[(j.trend, j.genre)] = self._stored(conn, j.trend, j.genre)
                group = state[(j.trend, j.genre)]
                old = group.get(j.doc_id)
                if old == j.grade:
                    result.unchanged += 1
                    continue
                if old is not None:
                    result.conflicts.append((j, old))
                    if on_conflict != "update":
                        result.kept += 1
                        continue
                    updates.append(
                        {"b_trend": j.trend, "b_genre": j.genre, "b_doc": j.doc_id, "b_grade": j.grade}
                    )
                    result.changed += 1
                else:
                    inserts.append({"trend": j.trend, "genre": j.genre, "doc_id": j.doc_id, "grade": j.grade})
                    result.added += 1
                group[j.doc_id] = j.grade
                audit.append(
                    dict(
                        trend=j.trend,
                        genre=j.genre,
                        doc_id=j.doc_id,
                        old_grade=old,
                        new_grade=j.grade,
                        who=who,
                        at=at,
                        source=source,
                    )
                )
            if on_conflict == "fail" and result.conflicts:
                raise ConflictError(result.conflicts)
            self._write(conn, inserts, updates, audit, who, at)
        return result

    def _write(
        self,
        conn: Connection,
        inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        audit: list[dict[str, Any]],
        who: str,
        at: datetime,
    ) -> None:
        t = self.t.judgments
        if inserts:
            conn.execute(sa.insert(t), [{**row, "updated_by": who, "updated_at": at} for row in inserts])
        if updates:
            stmt = (
                sa.update(t)
                .where(
                    t.c.trend == sa.bindparam("b_trend"),
                    t.c.genre == sa.bindparam("b_genre"),
                    t.c.doc_id == sa.bindparam("b_doc"),
                )
                .values(grade=sa.bindparam("b_grade"), updated_by=who, updated_at=at)
            )
            conn.execute(stmt, updates)
        if audit:
            conn.execute(sa.insert(self.t.changes), audit)

    @_guarded
    def remove(self, trend: str, genre: str, doc_id: int, who: str = "user") -> bool:
        t = self.t.judgments
        key = (t.c.trend == trend, t.c.genre == genre, t.c.doc_id == doc_id)
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(t.c.grade).where(*key)).scalar_one_or_none()
            if old is None:
                return False
            conn.execute(sa.delete(t).where(*key))
            conn.execute(
                sa.insert(self.t.changes),
                [
                    dict(
                        trend=trend,
                        genre=genre,
                        doc_id=doc_id,
                        old_grade=old,
                        new_grade=None,
                        who=who[:MAX_WHO_CHARS],
                        at=_now(),
                        source="remove",
                    )
                ],
            )
        return True

    @_guarded
    def judgments(self, trend: str | None = None, genre: str | None = None) -> list[Judgment]:
        t = self.t.judgments
        stmt = sa.select(t.c.trend, t.c.genre, t.c.doc_id, t.c.grade).order_by(
            t.c.trend, t.c.genre, t.c.doc_id
        )
        if trend is not None:
            stmt = stmt.where(t.c.trend == trend)
        if genre is not None:
            stmt = stmt.where(t.c.genre == genre)
        with self.engine.connect() as conn:
            return [Judgment(str(tr), str(g), int(d), int(gr)) for tr, g, d, gr in conn.execute(stmt)]

    @_guarded
    def changes(
        self, trend: str | None = None, genre: str | None = None, doc_id: int | None = None
    ) -> list[JudgmentChange]:
        c = self.t.changes
        stmt = sa.select(c).order_by(c.c.id)
        for column, value in ((c.c.trend, trend), (c.c.genre, genre), (c.c.doc_id, doc_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        with self.engine.connect() as conn:
            return [
                JudgmentChange(
                    r.trend, r.genre, int(r.doc_id), r.old_grade, r.new_grade, r.who, r.at, r.source or ""
                )
                for r in conn.execute(stmt)
            ]

    # Evaluation runs ------------------------------------------------------------------------------

    @_guarded
    def record_run(self, run: EvaluationRun) -> int:
        run.created_at = run.created_at or _now()
        row = dict(
            created_at=run.created_at,
            kind=run.kind,
            classifier=run.classifier[:200],
            model_version=run.model_version[:200],
            catalog_size=run.catalog_size,
            params=run.params,
            trends=run.trends,
            mean=run.mean,
            baseline_mean=run.baseline_mean,
            per_query=run.per_query,
            details=run.details,
        )
        with self.engine.begin() as conn:
            key = conn.execute(sa.insert(self.t.runs).values(**row)).inserted_primary_key
            run.id = int(key[0]) if key else 0
        return run.id

    @_guarded
    def runs(self, kind: str | None = None, limit: int | None = None) -> list[EvaluationRun]:
        r = self.t.runs
        stmt = sa.select(r).order_by(r.c.id.desc())
        if kind is not None:
            stmt = stmt.where(r.c.kind == kind)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = list(conn.execute(stmt))
        return [_run_of(row) for row in reversed(rows)]

    # Retention ------------------------------------------------------------------------------------

    @_guarded
    def prune(self, runs_before: datetime, changes_before: datetime) -> dict[str, int]:
        """Delete evaluation runs and judgment changes older than the cut-offs (judgments stay)."""
        r, c = self.t.runs, self.t.changes
        with self.engine.begin() as conn:
            runs = conn.execute(sa.delete(r).where(r.c.created_at < runs_before)).rowcount
            changes = conn.execute(sa.delete(c).where(c.c.at < changes_before)).rowcount
        return {"evaluation_runs": int(runs or 0), "judgment_changes": int(changes or 0)}


def _no_answer(exc: DBAPIError) -> bool:
    """True when the server did not answer (refused, lost, timed out), not when it answered with an error."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if getattr(orig, "sqlstate", "") is None:  # psycopg: errors of the client, not the server's
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in MYSQL_NO_ANSWER


def _run_of(row: Any) -> EvaluationRun:
    return EvaluationRun(
        kind=row.kind,
        classifier=row.classifier,
        model_version=row.model_version,
        catalog_size=row.catalog_size,
        params=row.params or {},
        trends=row.trends or [],
        mean=row.mean or {},
        baseline_mean=row.baseline_mean or {},
        per_query=row.per_query or {},
        details=row.details or {},
        created_at=row.created_at,
        id=row.id,
    )


def _engine(url: str, limits: JudgmentStoreSettings) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"future": True}
    read_s, connect_s = limits.timeout_seconds, limits.connect_timeout_seconds
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    elif backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        # A hung server costs one timeout, not the default of waiting forever on a read.
        timeouts = {"connect_timeout": connect_s, "read_timeout": read_s, "write_timeout": read_s}
        kwargs.update(pool_pre_ping=True, pool_recycle=3600, connect_args=timeouts)
    elif backend == "postgresql":
        # libpq takes whole seconds, at least 2; the statement timeout stops the server's own work.
        options = f"-c statement_timeout={int(read_s * 1000)}"
        connect_args = {"connect_timeout": max(2, math.ceil(connect_s)), "options": options}
        kwargs.update(pool_pre_ping=True, connect_args=connect_args)
    engine = sa.create_engine(parsed, **kwargs)
    if backend == "postgresql" and parsed.get_driver_name() == "psycopg":
        _no_reconnect_after_a_hang(engine, _bound_reads(engine, read_s))
    elif backend in ("mysql", "mariadb"):
        _no_reconnect_after_a_hang(engine, lambda error: isinstance(error.__context__, TimeoutError))
    return engine


def _bound_reads(engine: Engine, read_s: float) -> Callable[[BaseException], bool]:
    """psycopg has no client-side read timeout: connect with a connection class that has one; what says that
    a read timed out."""
    from freshrank.evaluate.pgtimeout import ReadTimeout, timed_connection

    connection_class = timed_connection(read_s)

    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        return connection_class.connect(*cargs, **cparams)

    return lambda error: isinstance(error, ReadTimeout)


def _no_reconnect_after_a_hang(engine: Engine, timed_out: Callable[[BaseException], bool]) -> None:
    """A pool's liveness ping that timed out fails the call at once: reconnecting to a hung server would cost
    a second timeout. A ping that finds the connection dead (the server restarted) still reconnects."""

    @sa.event.listens_for(engine, "handle_error")
    def handle(context: Any) -> None:
        if context.is_pre_ping and timed_out(context.original_exception):
            context.is_disconnect = False


def _breaker(url: str, limits: JudgmentStoreSettings) -> pybreaker.CircuitBreaker | None:
    """The process-wide breaker of the database server behind ``url`` (None for SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None
    address = f"{parsed.get_backend_name()}://{parsed.host}:{parsed.port or ''}"
    return breakers.breaker_for(address, limits.breaker_reset_seconds, (ServerUnreachable,))


def open_judgment_store(
    url: str, table_prefix: str | None = None, limits: JudgmentStoreSettings | None = None
) -> SqlJudgmentStore:
    """Open (creating and migrating when needed) the store at a SQLAlchemy URL: ``sqlite:///path`` (default),
    ``mysql+pymysql://user:pw@host:3306/db``, ``postgresql+psycopg://…``. Raises StoreUnavailable.
    ``limits``: timeouts, circuit breaker and table prefix (default: the settings' defaults); an explicit
    ``table_prefix`` wins over the one in ``limits``."""
    limits = limits or JudgmentStoreSettings()
    table_prefix = limits.table_prefix if table_prefix is None else table_prefix
    try:
        engine = _engine(url, limits)
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreUnavailable(f"bad judgments store URL {url!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StoreUnavailable(f"the driver for {safe_url(url)} is not installed: {exc.name}") from exc
    if table_prefix and not table_prefix.replace("_", "").isalnum():
        raise ValueError(f"table prefix must be letters, digits and '_', got {table_prefix!r}")
    return SqlJudgmentStore(engine, table_prefix, _breaker(url, limits))


def iter_groups(judgments: Iterable[Judgment]) -> Iterator[tuple[QueryId, dict[int, int]]]:
    """``(query, {doc_id: grade})`` per query, in first-seen order."""
    yield from qrels_of(judgments).items()


def qrels_of(judgments: Iterable[Judgment]) -> Qrels:
    """The judgments as qrels, queries in first-seen order."""
    qrels: Qrels = {}
    for j in judgments:
        qrels.setdefault(j.qid, {})[j.doc_id] = j.grade
    return qrels
