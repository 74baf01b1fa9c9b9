"""Alembic environment for the catalog; the URL comes from the caller, never from an ini file.

Sources, first found wins: ``config.attributes["connection"]`` (an open connection),
``config.attributes["url"]`` (set by ``catalog.migrate``), ``-x url=...`` on the command line,
``sqlalchemy.url``. SQLite runs in batch mode with foreign keys off during the migration (a
table rebuild must not cascade) and checked with ``PRAGMA foreign_key_check`` afterwards.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from avatar_pipeline.catalog.db import make_engine
from avatar_pipeline.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no catalog URL given to the migrations: call "
            "avatar_pipeline.catalog.migrate.upgrade_database(url) or pass -x url=..."
        )
    return url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        # catalog.db makes SQLAlchemy emit BEGIN on SQLite, so DDL is transactional there too.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sqlite(connection: Connection) -> None:
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, else a no-op
    try:
        _run(connection)
        problems = raw.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"migration left rows with broken foreign keys: {problems[:10]}")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                _run_sqlite(connection)
            else:
                _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
