"""The catalog database as a Dagster resource."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field, PrivateAttr
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.migrate import upgrade_database

# URLs this process has already brought to head: Dagster builds a fresh copy of the resource for
# every run and step, and Alembic's check costs a few hundred milliseconds each time.
_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


class CatalogResource(dg.ConfigurableResource):
    """SQLAlchemy sessions on the catalog (SQLite by default, PostgreSQL in production)."""

    database_url: str = Field(
        description="SQLAlchemy URL, e.g. sqlite:////abs/var/catalog.db or "
        "postgresql+psycopg2://user@host:5432/db (may come from an EnvVar)."
    )
    auto_migrate: bool = Field(
        default=True, description="Upgrade the schema to head on first use (embedded default)."
    )
    _factory: sessionmaker[Session] | None = PrivateAttr(default=None)

    def session_factory(self) -> sessionmaker[Session]:
        if self._factory is None:
            if self.auto_migrate:
                with _MIGRATE_LOCK:
                    if self.database_url not in _MIGRATED:
                        upgrade_database(self.database_url)
                        _MIGRATED.add(self.database_url)
            self._factory = make_session_factory(make_engine(self.database_url))
        return self._factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with session_scope(self.session_factory()) as session:
            yield session
