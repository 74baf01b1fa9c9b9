"""Engines, sessions and transactions behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import make_engine, normalize_url, session_scope
from avatar_pipeline.catalog.errors import ConflictError, NotFoundError
from avatar_pipeline.catalog.migrate import current_revision, head_revision, upgrade_database
from avatar_pipeline.catalog.models import User
from avatar_pipeline_tests.db_fixtures import database_kind


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg2"),
        ("postgres://u@h/db", "postgresql+psycopg2"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2"),
        ("sqlite:///var/catalog.db", "sqlite"),
    ],
)
def test_normalize_url_pins_psycopg2(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_sqlite_engine_creates_parent_dir_and_enforces_foreign_keys(tmp_path: Path) -> None:
    db_file = tmp_path / "nested" / "dir" / "catalog.db"
    engine = make_engine(f"sqlite:///{db_file}")
    try:
        for _ in range(2):  # every pooled connection, not just the first
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert db_file.parent.is_dir()
    finally:
        engine.dispose()


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_plain_postgresql_url_is_usable(migrated_catalog_url: str) -> None:
    assert database_kind(migrated_catalog_url) == "postgresql"
    plain = migrated_catalog_url.replace("postgresql+psycopg2://", "postgresql://")
    assert current_revision(plain) == head_revision()
    upgrade_database(plain)  # already at head: a no-op, not an import error for psycopg 3


def test_session_scope_commits_or_rolls_back(
    migrated_session_factory: sessionmaker[Session],
) -> None:
    with session_scope(migrated_session_factory) as session:
        repo.create_user(session, email="kept@example.com")
    with pytest.raises(RuntimeError), session_scope(migrated_session_factory) as session:
        repo.create_user(session, email="dropped@example.com")
        raise RuntimeError("boom")
    with session_scope(migrated_session_factory) as session:
        emails = set(session.scalars(select(User.email)))
    assert emails == {"kept@example.com"}


def test_rejected_write_keeps_the_rest_of_the_transaction(
    migrated_session_factory: sessionmaker[Session],
) -> None:
    """A conflict rolls back a savepoint only; earlier writes of the transaction survive."""
    with session_scope(migrated_session_factory) as session:
        repo.create_user(session, email="a@example.com")
        with pytest.raises(ConflictError, match=r"a@example\.com"):
            repo.create_user(session, email="a@example.com")
        repo.create_user(session, email="b@example.com")
    with session_scope(migrated_session_factory) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2


def test_timestamps_read_back_as_aware_utc(catalog_session: Session) -> None:
    before = datetime.now(UTC)
    user = repo.create_user(catalog_session, email="t@example.com")
    catalog_session.commit()
    catalog_session.expire_all()
    created = repo.get_user(catalog_session, user.id).created_at
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert abs((created - before).total_seconds()) < 60


def test_not_found_names_kind_and_id(catalog_session: Session) -> None:
    with pytest.raises(NotFoundError, match="no avatar kit with id not-a-uuid"):
        repo.get_kit(catalog_session, "not-a-uuid")
    with pytest.raises(NotFoundError, match="no character with id 00000000-"):
        repo.get_character(catalog_session, "00000000-0000-0000-0000-000000000000")
