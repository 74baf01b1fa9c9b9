"""Per-process limits on provider calls: how many at once, and how many predictions a minute.

Both limiters are safe across event loops and threads. Dagster ops may call ``asyncio.run``
once per step, and a serving process may run several loops in threads, so neither limiter
holds an ``asyncio`` primitive bound to the loop that happened to create it: state lives
behind a ``threading.Lock``, and a waiter parks on a future of *its own* running loop, which
the releasing side completes with ``call_soon_threadsafe``.

Sharing: ``shared_limits()`` keeps one ``ProviderLimits`` per (provider name, limits) in a
module-level registry. Replicate's 600 predictions/minute is a limit of the *account*, not of
one Python object, so every service in the process that talks to the same provider with the
same configuration draws from one budget, even when each built its own provider object (the
Dagster resource and the scene API in one process, say). Keying on the numbers as well keeps a
service configured differently (a test, a one-off script) from silently inheriting another's
limits.

Across processes: a ``ProviderLimits`` may also carry an instance-wide budget
(:class:`avatar_pipeline.catalog.provider_budget.ProviderBudget`, kept in the catalog
database). ``instance_slot()`` then holds a lease of that budget around each provider call, so
calls in flight and creates per minute are capped across every run worker, the API and the CLI
of the instance; the per-process limiters above still apply first (they keep one process from
queueing more waiters on the database than it can use).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from avatar_pipeline.concurrency import ConcurrencyLimiter

__all__ = ["ConcurrencyLimiter", "InstanceBudget", "ProviderLimits", "shared_limits"]


class InstanceBudget(Protocol):
    """An instance-wide provider budget shared by processes (e.g.
    ``catalog.provider_budget.ProviderBudget``): a lease per call."""

    database_url: str
    provider: str
    max_in_flight: int
    creates_per_minute: int
    lease_ttl_s: float

    def slot(self, predictions: int = 1) -> AbstractAsyncContextManager[float]: ...


class SlidingWindowRateLimiter:
    """At most ``limit`` acquisitions in any ``window_s`` seconds (600 per 60 s for Replicate).

    Each caller reserves the earliest instant that keeps the window within the limit, then
    sleeps until it: reservations are handed out in arrival order and a cancelled sleeper
    merely wastes its reservation.
    """

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"predictions_per_minute must be at least 1, got {limit}")
        self.limit = limit
        self.window_s = window_s
        self._grants: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self, count: int = 1) -> float:
        """Reserve ``count`` slots; returns the seconds to wait before using the last one."""
        with self._lock:
            now = time.monotonic()
            while self._grants and self._grants[0] <= now - self.window_s:
                self._grants.popleft()
            at = now
            for _ in range(count):
                at = now
                if len(self._grants) >= self.limit:
                    at = max(now, self._grants[-self.limit] + self.window_s)
                self._grants.append(at)
            while len(self._grants) > self.limit:  # older entries can no longer matter
                self._grants.popleft()
            return max(0.0, at - now)

    async def acquire(self, count: int = 1) -> float:
        """Wait until ``count`` more predictions fit in the window; returns the seconds waited."""
        delay = self.reserve(count)
        if delay > 0:
            await asyncio.sleep(delay)
        return delay


@dataclass(frozen=True)
class ProviderLimits:
    concurrency: ConcurrencyLimiter
    rate: SlidingWindowRateLimiter
    budget: InstanceBudget | None = field(default=None)

    @asynccontextmanager
    async def instance_slot(self, predictions: int = 1) -> AsyncIterator[float]:
        """Hold the instance-wide budget's lease for one call (a no-op without a budget);
        yields the seconds waited for it."""
        if self.budget is None:
            yield 0.0
            return
        async with self.budget.slot(predictions) as waited:
            yield waited


_registry: dict[tuple[str, int, int, str | None], ProviderLimits] = {}
_registry_lock = threading.Lock()


def _budget_key(budget: InstanceBudget | None) -> str | None:
    if budget is None:
        return None
    return repr((budget.database_url, budget.provider, budget.max_in_flight,
                 budget.creates_per_minute, budget.lease_ttl_s))  # fmt: skip


def shared_limits(
    provider_name: str,
    max_concurrency: int,
    predictions_per_minute: int,
    budget: InstanceBudget | None = None,
) -> ProviderLimits:
    """The process-wide limits for one provider and configuration (created on first use).

    ``budget``: the instance-wide budget to hold around each call as well; services built with
    an equal budget (same database, provider and caps) share the first one built.
    """
    key = (provider_name, max_concurrency, predictions_per_minute, _budget_key(budget))
    with _registry_lock:
        limits = _registry.get(key)
        if limits is None:
            limits = ProviderLimits(
                ConcurrencyLimiter(max_concurrency),
                SlidingWindowRateLimiter(predictions_per_minute, 60.0),
                budget,
            )
            _registry[key] = limits
        return limits
