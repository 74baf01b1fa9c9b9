"""The instance-wide provider budget holds across real OS processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import time
from typing import Any

import pytest

from avatar_pipeline.catalog.provider_budget import BudgetConfigError, Lease, ProviderBudget

PROCESSES = 4
CALLS_PER_PROCESS = 6
MAX_IN_FLIGHT = 3
CREATES_PER_WINDOW = 8
WINDOW_S = 0.5
HOLD_S = 0.08


def _calls(url: str, provider: str, start_at: float, out: Any) -> None:
    """One worker process: CALLS_PER_PROCESS concurrent calls, each holding a lease HOLD_S."""
    budget = ProviderBudget(
        url,
        provider,
        max_in_flight=MAX_IN_FLIGHT,
        creates_per_minute=CREATES_PER_WINDOW,
        window_s=WINDOW_S,
        poll_s=0.01,
    )

    async def one() -> tuple[float, float]:
        lease, _ = await budget.acquire(1)
        await asyncio.sleep(HOLD_S)
        done = time.time()  # before the release: the interval lies inside the lease
        await asyncio.to_thread(budget.release, lease)
        return lease.acquired_at, done

    async def main() -> list[tuple[float, float]]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        return await asyncio.gather(*(one() for _ in range(CALLS_PER_PROCESS)))

    out.put(asyncio.run(main()))
    budget.dispose()


# Times come from different processes' clocks (CLOCK_REALTIME on different vCPUs), which can
# disagree by a fraction of a millisecond on a VM: an interval ends this much earlier.
CLOCK_TOLERANCE_S = 0.003


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    ends = [b - CLOCK_TOLERANCE_S for _, b in intervals]
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for b in ends])
    now = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        now += step
        peak = max(peak, now)
    return peak


def _max_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    # the limiter's rule: at each acquire, creates in (t - window, t] including itself
    return max(sum(1 for s in starts if t - window < s <= t) for t in starts)


def test_processes_sharing_the_catalog_never_exceed_the_caps(migrated_catalog_url: str) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0  # every process is up and waiting before the first call
    workers = [
        ctx.Process(target=_calls, args=(migrated_catalog_url, "fake", start_at, out))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    try:
        results = [out.get(timeout=60) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=10)
    assert all(w.exitcode == 0 for w in workers)
    intervals = [iv for r in results for iv in r]
    assert len(intervals) == PROCESSES * CALLS_PER_PROCESS

    # the in-flight cap holds across processes, and was reached (the check is not blind)
    assert 2 <= _max_overlap(intervals) <= MAX_IN_FLIGHT
    starts = [a for a, _ in intervals]
    assert _max_in_window(starts, WINDOW_S) <= CREATES_PER_WINDOW
    # 24 creates at 8 per window cannot all start within the first two windows
    assert max(starts) - min(starts) >= 2 * WINDOW_S - 0.05
    # every lease was released
    budget = ProviderBudget(
        migrated_catalog_url, "fake", max_in_flight=1, creates_per_minute=1, window_s=WINDOW_S
    )
    assert budget.snapshot().in_flight == 0
    budget.dispose()


def _hold_forever(url: str, ttl: float, ready: Any) -> None:
    budget = ProviderBudget(url, "fake", max_in_flight=1, creates_per_minute=100, lease_ttl_s=ttl)
    lease = budget.try_acquire(1)
    assert isinstance(lease, Lease)
    ready.set()
    time.sleep(600)  # killed by the test; never releases, never renews


def test_a_killed_holder_frees_its_budget_when_the_lease_expires(
    migrated_catalog_url: str,
) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_forever, args=(migrated_catalog_url, 1.0, ready))
    holder.start()
    try:
        assert ready.wait(30)
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        budget = ProviderBudget(
            migrated_catalog_url, "fake", max_in_flight=1, creates_per_minute=100, poll_s=0.02
        )
        assert isinstance(budget.try_acquire(1), float)  # still held by the dead process
        lease, waited = asyncio.run(budget.acquire(1))
        assert 0.2 < waited < 5.0
        budget.release(lease)
        budget.dispose()
    finally:
        if holder.is_alive():
            holder.kill()


def test_a_live_holder_renews_its_lease_past_the_ttl(migrated_catalog_url: str) -> None:
    budget = ProviderBudget(
        migrated_catalog_url, "fake", max_in_flight=1, creates_per_minute=100, lease_ttl_s=0.3
    )

    async def scenario() -> list[object]:
        seen: list[object] = []
        async with budget.slot(1):
            for _ in range(6):  # 1.2 s = four TTLs
                await asyncio.sleep(0.2)
                seen.append(await asyncio.to_thread(budget.try_acquire, 1))
        return seen

    seen = asyncio.run(scenario())
    assert all(isinstance(s, float) for s in seen), seen
    assert budget.snapshot().in_flight == 0
    budget.dispose()


def test_budgets_are_per_provider_and_refuse_impossible_requests(
    migrated_catalog_url: str,
) -> None:
    a = ProviderBudget(migrated_catalog_url, "a", max_in_flight=1, creates_per_minute=2)
    b = ProviderBudget(migrated_catalog_url, "b", max_in_flight=1, creates_per_minute=2)
    lease = a.try_acquire(1)
    assert isinstance(lease, Lease)
    assert isinstance(b.try_acquire(1), Lease)  # another provider's budget is separate
    assert isinstance(a.try_acquire(1), float)
    a.release(lease)
    assert isinstance(a.try_acquire(1), Lease)  # the second create of the minute
    assert a.try_acquire(0) != 0  # no room in flight, or the minute is used up: a wait
    with pytest.raises(BudgetConfigError, match="can never fit"):
        a.try_acquire(3)
    with pytest.raises(BudgetConfigError):
        ProviderBudget(migrated_catalog_url, "a", max_in_flight=0, creates_per_minute=1)
    a.dispose()
    b.dispose()


def _service_calls(url: str, base_url: str, token: str, start_at: float, out: Any) -> None:
    """One worker process: an ImageService on the real replicate client, with the budget."""
    from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
    from avatar_pipeline.imaging.service import ImageService

    budget = ProviderBudget(
        url, "replicate", max_in_flight=MAX_IN_FLIGHT, creates_per_minute=600, poll_s=0.01
    )
    provider = ReplicateProvider(
        api_token=token, base_url=base_url, poll_interval_s=0.02, timeout_s=30.0
    )
    # a per-process limit above the instance cap: only the shared budget can hold the line
    service = ImageService(provider, max_concurrency=8, budget=budget)

    async def main() -> int:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        results = await asyncio.gather(
            *(service.generate(f"budget test {i}", width=256, height=256) for i in range(4))
        )
        await service.aclose()
        return len(results)

    out.put(asyncio.run(main()))
    budget.dispose()


# the budget's cross-process behaviour is covered on both engines above; this end-to-end run
# (ImageService -> real replicate client -> fake server) once, on SQLite
@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_image_services_in_several_processes_share_the_in_flight_cap(
    migrated_catalog_url: str,
) -> None:
    from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with FakeReplicateServer(processing_s=0.3, megapixels=0.05) as fake:
        start_at = time.time() + 2.5
        workers = [
            ctx.Process(
                target=_service_calls,
                args=(migrated_catalog_url, fake.base_url, fake.token, start_at, out),
            )
            for _ in range(3)
        ]
        for w in workers:
            w.start()
        try:
            done = [out.get(timeout=90) for _ in workers]
        finally:
            for w in workers:
                w.join(timeout=10)
        stats = fake.load_stats()
    assert done == [4, 4, 4]
    # what the provider saw: 12 predictions, never more than the instance cap at once
    assert stats["predictions"] == 12
    assert 2 <= stats["max_concurrent"] <= MAX_IN_FLIGHT


def test_a_catalog_without_the_budget_tables_gets_advice_or_is_migrated(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    bare = ProviderBudget(url, "fake", max_in_flight=1, creates_per_minute=1)
    with pytest.raises(BudgetConfigError, match="db upgrade"):
        bare.try_acquire(1)
    bare.dispose()
    embedded = ProviderBudget(url, "fake", max_in_flight=1, creates_per_minute=1, auto_migrate=True)
    assert isinstance(embedded.try_acquire(1), Lease)
    embedded.dispose()
