"""Concurrency and rate limits: shared by services, safe across event loops and threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from avatar_pipeline.concurrency import within
from avatar_pipeline.imaging.limits import (
    ConcurrencyLimiter,
    SlidingWindowRateLimiter,
    shared_limits,
)
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import RecordingProvider, png_bytes


async def test_service_never_exceeds_max_concurrency() -> None:
    provider = RecordingProvider("limits-concurrency", delay_s=0.05)
    service = ImageService(provider, max_concurrency=3)
    responses = await asyncio.gather(*(service.generate(f"p{i}", seed=i) for i in range(12)))
    assert provider.max_in_flight == 3
    assert len(responses) == 12
    assert max(r.extra["queue_wait_ms"] for r in responses) >= 100  # the last wave waited


async def test_services_sharing_a_provider_share_the_limit() -> None:
    provider = RecordingProvider("limits-shared", delay_s=0.05)
    one = ImageService(provider, max_concurrency=2)
    two = ImageService(provider, max_concurrency=2)
    assert one.limits is two.limits
    await asyncio.gather(
        *(one.generate(f"a{i}", seed=i) for i in range(4)),
        *(two.generate(f"b{i}", seed=i) for i in range(4)),
    )
    assert provider.max_in_flight == 2


def test_service_works_across_successive_event_loops() -> None:
    """Dagster steps may each call asyncio.run: nothing may stay bound to the first loop."""
    provider = RecordingProvider("limits-loops", delay_s=0.01)
    service = ImageService(provider, max_concurrency=1)
    for i in range(3):
        response = asyncio.run(service.generate(f"step {i}", seed=i))
        assert response.prompt == f"step {i}"
    assert provider.calls == 3


def test_the_limit_holds_across_threads_running_their_own_loops() -> None:
    provider = RecordingProvider("limits-threads", delay_s=0.03)
    service = ImageService(provider, max_concurrency=2)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def calls() -> None:
            await asyncio.gather(*(service.generate(f"t{n}-{i}", seed=i) for i in range(4)))

        try:
            asyncio.run(calls())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert provider.calls == 12
    assert provider.max_in_flight == 2


def test_replicate_provider_across_successive_event_loops(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    """Each loop gets its own HTTP clients; a closed loop's clients are never reused."""
    provider = make_provider()
    service = ImageService(provider)
    for i in range(2):
        response = asyncio.run(service.edit(f"step {i}", [png_bytes()], seed=i))
        assert response.prompt == f"step {i}"
    assert len(fake_replicate.creates()) == 2
    assert len(provider._clients) == 1  # the first loop's clients were dropped


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_use == 0
    async with limiter.slot():
        assert limiter.in_use == 1
    assert limiter.in_use == 0


async def test_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire())
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.01)
    limiter.release()  # hands the slot to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(second, 1)  # so ``second`` gets it
    assert limiter.in_use == 1


async def test_rate_limiter_keeps_to_its_window() -> None:
    limiter = SlidingWindowRateLimiter(limit=3, window_s=0.3)
    started = time.monotonic()
    waits = [await limiter.acquire() for _ in range(7)]
    elapsed = time.monotonic() - started
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert elapsed >= 0.6  # 7 acquisitions at 3 per 0.3 s need two further windows
    assert elapsed < 2.0


async def test_rate_limiter_counts_every_image_of_a_request() -> None:
    limiter = SlidingWindowRateLimiter(limit=4, window_s=0.2)
    assert await limiter.acquire(4) == 0.0
    assert limiter.reserve(1) > 0.1


def test_shared_limits_are_keyed_by_provider_and_configuration() -> None:
    assert shared_limits("k", 2, 60) is shared_limits("k", 2, 60)
    assert shared_limits("k", 2, 60) is not shared_limits("k", 3, 60)
    assert shared_limits("k", 2, 60) is not shared_limits("other", 2, 60)
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimiter(0)


async def test_a_deadline_never_loses_the_callers_cancellation() -> None:
    """The race of python/cpython#86296: the caller is cancelled in the tick its awaited result
    is ready. ``asyncio.wait_for`` on 3.11 returns the result and the cancellation is gone (the
    provider then polled a prediction nobody waited for, until its own 60 s timeout);
    ``within`` keeps it."""

    async def cancelled_as_the_result_is_ready() -> str:
        ready = asyncio.create_task(asyncio.sleep(0, result="done"))
        await ready
        current = asyncio.current_task()
        assert current is not None
        current.cancel()
        await within(ready, 10)
        await asyncio.sleep(0.05)  # a lost cancellation would let this return
        return "cancellation lost"

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(cancelled_as_the_result_is_ready())


async def test_a_deadline_raises_timeout_and_returns_results() -> None:
    assert await within(asyncio.sleep(0, result=7), 1) == 7
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(5), 0.05)
