"""Throw-away PostgreSQL databases on 127.0.0.1:5432 for tests (trust auth, as in CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

ADMIN_URL = os.environ.get(
    "AVATAR_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


def _admin():
    try:
        conn = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is required for this test and is not reachable ({ADMIN_URL}): {exc}. "
            "Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ) from exc
    conn.autocommit = True
    return conn


@contextmanager
def temporary_database(prefix: str = "avatar_test") -> Iterator[str]:
    """Create a uniquely named database; yield its name; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
