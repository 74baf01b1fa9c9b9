"""Yield a kit's slot outcomes to Dagster as each slot finishes, not when the whole kit is done.

The kit is produced on its own event loop in a worker thread; each finished slot is handed to the
Dagster step (a synchronous generator) through a queue, so its materialisation is recorded at
once. After a crash the event log then holds every slot the catalog holds (up to the one being
written), instead of none.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator

from avatar_pipeline.generation.outcomes import SlotOutcome

_DONE = object()


def stream_outcomes(
    produce: Callable[[Callable[[SlotOutcome], None]], Awaitable[None]],
) -> Iterator[SlotOutcome]:
    """Run ``produce(report)`` on a new event loop in a thread; yield what it reports, in order,
    as it reports it. An exception of ``produce`` is raised here after the outcomes before it."""
    channel: queue.Queue[object] = queue.Queue()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(produce(channel.put))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            channel.put(_DONE)

    thread = threading.Thread(target=work, name="kit-images", daemon=True)
    thread.start()
    while (item := channel.get()) is not _DONE:
        assert isinstance(item, SlotOutcome)
        yield item
    thread.join()
    if failure:
        raise failure[0]
