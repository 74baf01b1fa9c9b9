"""A counting semaphore usable from any event loop and thread (the provider limits and the
instance-wide budget's poller share it), and a deadline that never loses a cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

__all__ = ["ConcurrencyLimiter", "within"]

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await awaitable`` with a deadline (``TimeoutError`` when it passes).

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in the same
    loop tick as the awaited result (python/cpython#86296, fixed in 3.12 by rebuilding it on
    ``asyncio.timeout``), and a caller's deadline was then lost: the provider went on polling a
    prediction nobody waited for, until its own timeout."""
    async with asyncio.timeout(seconds):
        return await awaitable


class ConcurrencyLimiter:
    """A counting semaphore usable from any event loop, FIFO among waiters."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {limit}")
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_use < self.limit and not self._waiters:
                self._in_use += 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, waiter))
                    handed_a_slot = False
                except ValueError:  # release() already passed its slot to us
                    handed_a_slot = True
            if handed_a_slot:
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                # The slot passes straight to the waiter: ``_in_use`` stays the same.
                try:
                    loop.call_soon_threadsafe(_wake, waiter)
                except RuntimeError:  # its loop is closed, and its task died with it
                    continue
                return
            self._in_use -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
