"""Dagster instance storage on PostgreSQL that keeps its connections (dagster-postgres, pooled).

dagster-postgres opens a new PostgreSQL connection for every storage call (its engines use
``NullPool``, so an idle process holds nothing). A fleet run stores thousands of events and the
daemon polls runs, backfills and sensors continuously, so each call pays a TCP connect, an
authentication and a new PostgreSQL backend process. Measured through ``bench/bench_fleet.py``
with py-spy: a third of the daemon's CPU and ~5 % of each run worker's went to opening
connections.

These subclasses are the same storages with a small pool per process instead: one connection
kept (``POOL_SIZE``), up to ``MAX_OVERFLOW`` more while threads need them, checked before use
(``pool_pre_ping``: a connection the server closed is replaced, not reported) and recycled after
``POOL_RECYCLE_SECONDS``. This is what dagster-postgres itself does for the webserver
(``optimize_for_webserver``). Run workers are spawned, not forked, so no connection crosses a
process boundary. Use them in ``dagster.yaml`` (``dagster.postgres.yaml`` shows how)::

    run_storage:
      module: avatar_pipeline.instance_storage
      class: PooledPostgresRunStorage
      config:
        postgres_db: {...}

The config is dagster-postgres' own (``postgres_db`` or ``postgres_url``).
"""

from __future__ import annotations

from typing import Any

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

POOL_SIZE = 1
MAX_OVERFLOW = 8
POOL_RECYCLE_SECONDS = 600

__all__ = [
    "PooledPostgresEventLogStorage",
    "PooledPostgresRunStorage",
    "PooledPostgresScheduleStorage",
    "pooled_engine_kwargs",
]


def pooled_engine_kwargs(engine: Any) -> dict[str, Any]:
    """Engine arguments for a pooled replacement of a dagster-postgres ``NullPool`` engine."""
    kwargs: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_size": POOL_SIZE,
        "max_overflow": MAX_OVERFLOW,
        "pool_recycle": POOL_RECYCLE_SECONDS,
        "pool_pre_ping": True,
    }
    options = engine.url.query.get("options")
    if options:
        kwargs["connect_args"] = {"options": options}
    return kwargs


def _from_config(cls: Any, inst_data: Any, config_value: Any) -> Any:
    """What dagster-postgres' ``from_config_value`` does, for the subclass (theirs names the
    base class)."""
    return cls(
        inst_data=inst_data,
        postgres_url=pg_url_from_config(config_value),
        should_autocreate_tables=config_value.get("should_autocreate_tables", True),
        token_provider=get_token_provider_from_config(config_value),
    )


def _pool(storage: Any) -> None:
    old = storage._engine
    storage._engine = create_pg_engine(
        storage.postgres_url, storage._token_provider, **pooled_engine_kwargs(old)
    )
    old.dispose()


class _Pooled:
    """Mixin: the dagster-postgres storage it precedes, with a pooled engine."""

    _engine: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _pool(self)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Any:
        return _from_config(cls, inst_data, config_value)


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """``PostgresRunStorage`` with a per-process connection pool."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """``PostgresEventLogStorage`` with a per-process connection pool (the event watcher keeps
    its own LISTEN connection, as before)."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """``PostgresScheduleStorage`` with a per-process connection pool."""
