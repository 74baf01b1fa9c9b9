"""Ordering work inside one kit run."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator


class PriorityGate:
    """At most ``capacity`` scoring calls at a time (the CPU is the limit), anchors first: a
    full-body anchor is on its kit's critical path (poses wait for it), expressions are not.

    A kit run has its own gate of one; a run over many kits shares one gate of about one per
    core between all its kits, so every kit's anchors are scored before any kit's expressions
    (measured in bench/bench_fleet.py: without it, full-body anchors queued behind other kits'
    expressions and the kits' last layer started late)."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = max(1, capacity)
        self._busy = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = 0

    @contextlib.asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        if self._busy >= self.capacity:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._order += 1
            heapq.heappush(self._waiting, (priority, self._order, future))
            await future  # the releaser handed its place over (``_busy`` unchanged)
        else:
            self._busy += 1
        try:
            yield
        finally:
            while self._waiting:
                _, _, nxt = heapq.heappop(self._waiting)
                if not nxt.done():
                    nxt.set_result(None)
                    break
            else:
                self._busy -= 1
