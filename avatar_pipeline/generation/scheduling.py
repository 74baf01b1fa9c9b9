"""Ordering work inside one kit run."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator


class PriorityGate:
    """One scoring call at a time (the CPU is the limit), anchors first: the full-body anchor
    is on the kit's critical path (poses wait for it), the expressions are not."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = 0

    @contextlib.asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        if self._busy:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._order += 1
            heapq.heappush(self._waiting, (priority, self._order, future))
            await future  # ownership is handed over by the releaser
        self._busy = True
        try:
            yield
        finally:
            while self._waiting:
                _, _, nxt = heapq.heappop(self._waiting)
                if not nxt.done():
                    nxt.set_result(None)
                    break
            else:
                self._busy = False
