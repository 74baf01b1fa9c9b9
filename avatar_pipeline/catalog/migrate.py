"""Run the catalog's Alembic migrations from Python, with no ``alembic.ini`` needed.

``script_location`` is this package's ``migrations`` directory and the database URL is passed in
(``config.attributes["url"]``), so the same calls work for SQLite files, PostgreSQL and tests.
From a shell use ``avatar-pipeline db upgrade`` (the catalog URL comes from the settings); the
plain ``alembic`` command also works with ``-x url=...`` and a config naming this
``script_location``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from avatar_pipeline.catalog.db import make_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD = "head"
LEGACY_REVISION = "0001"
PHASE1_REVISION = "0002"


def alembic_config(url: str | URL) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = normalize_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    config.attributes["url"] = rendered
    return config


def upgrade_database(url: str | URL, revision: str = HEAD) -> None:
    """Upgrade the catalog at ``url`` to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str | URL, revision: str) -> None:
    """Downgrade the catalog at ``url`` to ``revision`` (``"base"`` drops every table)."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None for an empty (never migrated) database."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError(f"no Alembic revisions found under {MIGRATIONS_DIR}")
    return head
