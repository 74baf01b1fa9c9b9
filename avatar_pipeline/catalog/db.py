"""Engines and sessions for the catalog, the same on SQLite and PostgreSQL.

SQLite gets what it needs to behave like the production database: foreign keys enforced on
every connection (so ``ON DELETE CASCADE`` holds), real transactions with savepoints (SQLAlchemy
emits ``BEGIN`` itself instead of the sqlite3 driver's legacy mode), WAL and a busy timeout so
the API and the Dagster side can share one file.

Write transactions (``session_scope(factory, write=True)`` and ``write_transaction``) take the
write lock up front on SQLite (``BEGIN IMMEDIATE``): a deferred ``BEGIN`` that reads and then
writes cannot wait for the lock (in WAL mode SQLite answers ``database is locked`` at once when
another connection committed since the read), while ``BEGIN IMMEDIATE`` waits for the busy timeout.
``write_transaction`` also re-runs the transaction when it still loses: on SQLite a lock that
outlived the busy timeout, on PostgreSQL a serialization failure (40001) or a deadlock (40P01).
The API and the pipeline use the same functions.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

logger = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_SECONDS = 30
WRITE_OPTION = "avatar_catalog_write"
"""Execution option that makes SQLite begin the transaction with ``BEGIN IMMEDIATE``."""
DEFAULT_WRITE_ATTEMPTS = 5
RETRYABLE_PG_CODES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_SQLITE_LOCK_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def normalize_url(url: str | URL) -> URL:
    """Pin the PostgreSQL driver to psycopg2 (``postgresql://`` means psycopg 3 in SQLAlchemy 2.1,
    which is not installed); accept Heroku-style ``postgres://`` too."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    return normalize_url(url).get_backend_name() == "sqlite"


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or bool(url.query.get("mode") == "memory")


def make_engine(url: str | URL, **engine_kwargs: Any) -> Engine:
    """Create an engine for the catalog URL.

    SQLite: creates the file's parent directory, turns on ``PRAGMA foreign_keys`` for every
    connection and lets SQLAlchemy own ``BEGIN`` so savepoints work. PostgreSQL: psycopg2.
    Extra keyword arguments go to ``create_engine`` (e.g. ``poolclass``).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **engine_kwargs)

    memory = _is_memory_sqlite(parsed)
    if not memory and parsed.database:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(engine_kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    if memory:
        connect_args.setdefault("check_same_thread", False)
        engine_kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(parsed, connect_args=connect_args, **engine_kwargs)
    _install_sqlite_hooks(engine, wal=not memory)
    return engine


def _install_sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit: SQLAlchemy emits BEGIN below, so DDL and SAVEPOINT
        # participate in the transaction (the sqlite3 driver's legacy mode breaks both).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A write transaction takes the write lock now, so the busy timeout is honoured; a
        # read-then-write upgrade of a deferred transaction would fail at once under contention.
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def _write_bind(factory: sessionmaker[Session]) -> Engine | None:
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine):
        return bind.execution_options(**{WRITE_OPTION: True})
    return None


def new_session(factory: sessionmaker[Session], *, write: bool = False) -> Session:
    """A session from ``factory``; ``write=True`` makes each of its transactions a write
    transaction (see ``session_scope``). The caller commits/rolls back and closes it."""
    if not write:
        return factory()
    bind = _write_bind(factory)
    if bind is not None:
        return factory(bind=bind)
    session = factory()
    session.connection(execution_options={WRITE_OPTION: True})
    return session


@contextmanager
def session_scope(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any error.

    ``write=True`` (the default): on SQLite every transaction of this session starts with
    ``BEGIN IMMEDIATE`` (the write lock is taken before the first read, waiting up to the busy
    timeout), so a block that reads and then writes never fails with "database is locked"
    under concurrency; on PostgreSQL it changes nothing. Pass ``write=False`` for a read-only
    block that should run alongside writers (WAL readers take no lock). Use
    ``write_transaction`` to also retry a transaction that lost a race.
    """
    session = new_session(factory, write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_retryable(exc: BaseException) -> bool:
    """True for a transaction that lost a race and may simply be run again: SQLite "database is
    locked"/busy, PostgreSQL serialization failure (40001) or deadlock (40P01)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code in RETRYABLE_PG_CODES:
        return True
    module = type(orig).__module__
    if module.startswith("sqlite3"):
        message = str(orig).lower()
        return any(text in message for text in _SQLITE_LOCK_MESSAGES)
    return False


def write_transaction(
    factory: sessionmaker[Session],
    fn: Callable[[Session], T],
    *,
    attempts: int = DEFAULT_WRITE_ATTEMPTS,
    backoff_seconds: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn(session)`` in a write transaction (``session_scope(write=True)``) and commit.

    A transaction that loses a race (``is_retryable``) is rolled back and ``fn`` runs again in a
    fresh transaction, up to ``attempts`` times, with jittered exponential backoff; any other
    error, or the last failure, propagates with nothing committed. ``fn`` must therefore do
    nothing outside the database that cannot be repeated.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(factory, write=True) as session:
                return fn(session)
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            delay = backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random())
            logger.warning(
                "catalog write lost a race (%s); retrying in %.2f s (attempt %d of %d)",
                type(exc.orig).__name__,
                delay,
                attempt + 1,
                attempts,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
