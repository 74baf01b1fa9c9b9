"""One provider budget for the whole instance, kept in the catalog database.

Replicate limits prediction creates per minute (600) per *account*, and we cap the calls in
flight; both must hold across every Dagster run worker, the scene API and any CLI process, so
the count lives where all of them already meet: the catalog database.

- ``provider_budget_leases``: one row per call in flight, with ``expires_at``. Holders renew
  their lease while the call runs (every ``lease_ttl_s / 3``); a killed process stops renewing,
  and its lease stops counting after at most ``lease_ttl_s``.
- ``provider_budget_creates``: one row per prediction create; rows older than the window are
  deleted as a side effect of acquiring.

Acquiring is one short transaction that is serialised per provider: ``BEGIN IMMEDIATE`` on
SQLite (the database's write lock, waited for with the busy timeout) and a transaction-scoped
advisory lock (``pg_advisory_xact_lock``) on PostgreSQL. Inside it the holder deletes what
expired, counts what is left, and either inserts its lease and creates or learns how long to
wait. Waiting is polling (``poll_s``), one poller per process at a time, so N waiting calls in
a process cost one query per poll, not N.

Times are Unix epoch seconds from the holders' clocks: all holders of one instance are
expected to run with synchronised clocks (NTP); skew shows up as a lease living slightly
longer or shorter than ``lease_ttl_s``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from avatar_pipeline.catalog.db import is_sqlite, make_engine, normalize_url

DEFAULT_LEASE_TTL_S = 60.0
DEFAULT_POLL_S = 0.05


class BudgetConfigError(ValueError):
    """The budget cannot be configured as asked (a cap below one, a request above the cap)."""


@dataclass(frozen=True)
class Lease:
    id: str
    provider: str
    creates: int
    acquired_at: float


@dataclass(frozen=True)
class BudgetSnapshot:
    in_flight: int
    creates_in_window: int


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _advisory_key(provider: str) -> int:
    # a stable signed 64-bit key per provider (namespace 'avatar-budget')
    return (zlib.crc32(b"avatar-budget") << 32 | zlib.crc32(provider.encode())) - (1 << 63)


def _budget_engine(url: str) -> Engine:
    """SQLite: a connection per transaction that starts with BEGIN IMMEDIATE (the write lock).

    PostgreSQL: the catalog's ordinary engine; the advisory lock serialises acquirers.
    """
    if not is_sqlite(url):
        return make_engine(url, pool_size=2, max_overflow=4)
    engine = create_engine(
        normalize_url(url),
        connect_args={"timeout": 30, "isolation_level": None},
        poolclass=NullPool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


def _ensure_migrated(url: str) -> None:
    """Bring the catalog to head once per process (embedded defaults, like CatalogResource)."""
    with _MIGRATE_LOCK:
        if url not in _MIGRATED:
            from avatar_pipeline.catalog.migrate import upgrade_database

            upgrade_database(url)
            _MIGRATED.add(url)


class ProviderBudget:
    """Caps on one provider's calls in flight and creates per window, shared by every process
    that uses the same catalog database."""

    def __init__(
        self,
        database_url: str,
        provider: str,
        *,
        max_in_flight: int,
        creates_per_minute: int,
        window_s: float = 60.0,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        poll_s: float = DEFAULT_POLL_S,
        auto_migrate: bool = False,
    ) -> None:
        if max_in_flight < 1:
            raise BudgetConfigError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if creates_per_minute < 1:
            raise BudgetConfigError(
                f"creates_per_minute must be at least 1, got {creates_per_minute}"
            )
        if lease_ttl_s <= 0 or poll_s <= 0 or window_s <= 0:
            raise BudgetConfigError("lease_ttl_s, poll_s and window_s must be positive")
        self.database_url = database_url
        self.provider = provider
        self.max_in_flight = max_in_flight
        self.creates_per_minute = creates_per_minute
        self.window_s = window_s
        self.lease_ttl_s = lease_ttl_s
        self.poll_s = poll_s
        self.auto_migrate = auto_migrate
        self._sqlite = is_sqlite(database_url)
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._holder = _holder()
        # One poller per process: asyncio primitives are per loop, so a thread lock handed
        # out through a worker thread would block; instead a turnstile of our own.
        from avatar_pipeline.concurrency import ConcurrencyLimiter

        self._turnstile = ConcurrencyLimiter(1)

    def __repr__(self) -> str:
        return (
            f"ProviderBudget(provider={self.provider!r}, max_in_flight={self.max_in_flight}, "
            f"creates_per_minute={self.creates_per_minute}, lease_ttl_s={self.lease_ttl_s})"
        )

    @property
    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                if self.auto_migrate:
                    _ensure_migrated(self.database_url)
                self._engine = _budget_engine(self.database_url)
            return self._engine

    def dispose(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- one transaction each ------------------------------------------------------------------

    def _lock(self, conn: Any) -> None:
        if not self._sqlite:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(self.provider)}
            )

    def try_acquire(self, creates: int = 1) -> Lease | float:
        """Take a lease for one call that makes ``creates`` predictions (each counts as one in
        flight), or say how many seconds to wait before trying again."""
        if creates < 0 or creates > min(self.creates_per_minute, self.max_in_flight):
            raise BudgetConfigError(
                f"a call of {creates} predictions can never fit in {self.max_in_flight} in "
                f"flight and {self.creates_per_minute} per {self.window_s:g} s"
            )
        try:
            return self._try_acquire(creates)
        except DBAPIError as exc:
            if "provider_budget" in str(exc):
                raise BudgetConfigError(
                    "the catalog database has no provider budget tables (migration 0006): run "
                    "`avatar-pipeline db upgrade`, or set AVATAR_PROVIDER_BUDGET=process"
                ) from exc
            raise

    def _try_acquire(self, creates: int) -> Lease | float:
        p = {"p": self.provider}
        with self.engine.begin() as conn:
            self._lock(conn)
            now = time.time()
            conn.execute(
                text(
                    "DELETE FROM provider_budget_leases WHERE provider = :p AND expires_at <= :now"
                ),
                {**p, "now": now},
            )
            conn.execute(
                text(
                    "DELETE FROM provider_budget_creates WHERE provider = :p AND created_at <= :t"
                ),
                {**p, "t": now - self.window_s},
            )
            in_flight = conn.execute(
                text(
                    "SELECT coalesce(sum(units), 0) FROM provider_budget_leases WHERE provider = :p"
                ),
                p,
            ).scalar_one()
            units = max(1, creates)
            if in_flight + units > self.max_in_flight:
                return self.poll_s
            recent = list(
                conn.execute(
                    text(
                        "SELECT created_at FROM provider_budget_creates WHERE provider = :p "
                        "ORDER BY created_at"
                    ),
                    p,
                ).scalars()
            )
            excess = len(recent) + creates - self.creates_per_minute
            if excess > 0:
                # the window has room once the excess oldest creates have aged out
                return max(0.001, recent[excess - 1] + self.window_s - now)
            lease = Lease(uuid.uuid4().hex, self.provider, creates, now)
            conn.execute(
                text(
                    "INSERT INTO provider_budget_leases (id, provider, holder, units, "
                    "acquired_at, expires_at) VALUES (:id, :p, :h, :u, :now, :exp)"
                ),
                {
                    **p,
                    "id": lease.id,
                    "h": self._holder,
                    "u": units,
                    "now": now,
                    "exp": now + self.lease_ttl_s,
                },
            )
            if creates:
                conn.execute(
                    text(
                        "INSERT INTO provider_budget_creates (provider, created_at) "
                        "VALUES (:p, :now)"
                    ),
                    [{**p, "now": now}] * creates,
                )
            return lease

    def renew(self, lease: Lease) -> bool:
        """Push the lease's expiry out by ``lease_ttl_s``; False if it had already expired."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text(
                    "UPDATE provider_budget_leases SET expires_at = :exp "
                    "WHERE id = :id AND expires_at > :now"
                ),
                {"id": lease.id, "now": time.time(), "exp": time.time() + self.lease_ttl_s},
            )
            return bool(result.rowcount)

    def release(self, lease: Lease) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM provider_budget_leases WHERE id = :id"), {"id": lease.id}
            )

    def snapshot(self) -> BudgetSnapshot:
        """What counts against the budget right now (live leases, creates in the window)."""
        now = time.time()
        with self.engine.begin() as conn:
            in_flight = conn.execute(
                text(
                    "SELECT coalesce(sum(units), 0) FROM provider_budget_leases "
                    "WHERE provider = :p AND expires_at > :now"
                ),
                {"p": self.provider, "now": now},
            ).scalar_one()
            creates = conn.execute(
                text(
                    "SELECT count(*) FROM provider_budget_creates "
                    "WHERE provider = :p AND created_at > :t"
                ),
                {"p": self.provider, "t": now - self.window_s},
            ).scalar_one()
        return BudgetSnapshot(in_flight=int(in_flight), creates_in_window=int(creates))

    # -- async use -----------------------------------------------------------------------------

    async def acquire(self, creates: int = 1) -> tuple[Lease, float]:
        """Wait for a lease; returns it with the seconds waited."""
        started = time.monotonic()
        async with self._turnstile.slot():
            while True:
                got = await asyncio.to_thread(self.try_acquire, creates)
                if isinstance(got, Lease):
                    return got, time.monotonic() - started
                await asyncio.sleep(min(got, 1.0))

    @asynccontextmanager
    async def slot(self, creates: int = 1) -> AsyncIterator[float]:
        """Hold one call's lease for the block (renewed while it runs); yields seconds waited."""
        lease, waited = await self.acquire(creates)
        renewer = asyncio.create_task(self._keep_renewing(lease))
        try:
            yield waited
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            await asyncio.to_thread(self.release, lease)

    async def _keep_renewing(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            await asyncio.to_thread(self.renew, lease)
