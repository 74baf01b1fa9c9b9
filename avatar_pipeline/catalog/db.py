"""Engines and sessions for the catalog, the same on SQLite and PostgreSQL.

SQLite gets what it needs to behave like the production database: foreign keys enforced on
every connection (so ``ON DELETE CASCADE`` holds), real transactions with savepoints (SQLAlchemy
emits ``BEGIN`` itself instead of the sqlite3 driver's legacy mode), WAL and a busy timeout so
the API and the Dagster side can share one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_SECONDS = 30


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
        connection.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
