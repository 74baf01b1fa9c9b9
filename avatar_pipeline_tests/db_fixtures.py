"""Catalog database fixtures, shared by every test package that needs the catalog.

Use them by importing into a package's ``conftest.py`` (pytest only honours ``pytest_plugins``
in the root conftest)::

    from avatar_pipeline_tests.db_fixtures import (  # noqa: F401
        catalog_session, catalog_url, migrated_catalog_url, migrated_session_factory,
    )

``catalog_url`` is parametrised over ``sqlite`` and ``postgresql`` and yields a fresh, empty
database; restrict a test to one with
``@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)``.

PostgreSQL: a uniquely named database is created on ``AVATAR_TEST_POSTGRES_URL`` (default
``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``, then the current OS user) and dropped
``WITH (FORCE)`` afterwards. If no server answers, PostgreSQL tests fail when ``CI`` is set and
are skipped (with the reason) otherwise.
"""

from __future__ import annotations

import functools
import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from avatar_pipeline.catalog.db import make_engine, make_session_factory, normalize_url
from avatar_pipeline.catalog.migrate import upgrade_database

POSTGRES_URL_ENV = "AVATAR_TEST_POSTGRES_URL"
DATABASE_KINDS = ("sqlite", "postgresql")


def _candidate_admin_urls() -> list[str]:
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        return [configured]
    return [
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        f"postgresql+psycopg2://{getpass.getuser()}@127.0.0.1:5432/postgres",
    ]


@functools.cache
def _postgres_admin() -> tuple[URL | None, str]:
    problems = []
    for candidate in _candidate_admin_urls():
        url = normalize_url(candidate)
        engine = create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return url, ""
        except SQLAlchemyError as exc:
            problems.append(f"{url.render_as_string(hide_password=True)}: {exc.orig or exc}")
        finally:
            engine.dispose()
    return None, "; ".join(problems)


def require_postgres() -> URL:
    """The admin URL of the test PostgreSQL server; fail under CI, skip locally, if it's down."""
    url, problems = _postgres_admin()
    if url is None:
        message = (
            f"PostgreSQL is not reachable ({problems.strip()}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect <version> main start` or point "
            f"{POSTGRES_URL_ENV} at a server where the user may CREATE DATABASE."
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    """Create a uniquely named empty database; drop it (forcefully) afterwards."""
    admin = require_postgres()
    name = f"avatar_test_{uuid.uuid4().hex[:16]}"
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def database_kind(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


@pytest.fixture(params=DATABASE_KINDS)
def catalog_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty catalog database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
        return
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def migrated_catalog_url(catalog_url: str) -> str:
    """``catalog_url`` upgraded to the newest revision."""
    upgrade_database(catalog_url)
    return catalog_url


@pytest.fixture
def migrated_session_factory(migrated_catalog_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on the migrated catalog; the engine is disposed afterwards."""
    engine = make_engine(migrated_catalog_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def catalog_session(migrated_session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session on a migrated catalog; whatever the test left uncommitted is rolled back."""
    with migrated_session_factory() as session:
        yield session
        session.rollback()
