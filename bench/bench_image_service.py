"""Benchmark: 32 concurrent ImageService.edit() calls vs one, against the fake Replicate server.

The fake holds every prediction for ``--hold`` seconds (1 s by default), so a single edit takes
about that long; 32 concurrent edits should take hardly longer when the service really overlaps
them (target: at most 1.3x). A third row shows the concurrency limit at work (max_concurrency=8
turns 32 calls into 4 waves).

Run: ``.venv/bin/python bench/bench_image_service.py [--calls 32] [--hold 1.0]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for avatar_pipeline_tests

from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer


def _reference() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (180, 90, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _run(server: FakeReplicateServer, calls: int, max_concurrency: int, tag: str) -> dict:
    provider = ReplicateProvider(
        api_token=server.token, base_url=server.base_url, poll_interval_s=0.05
    )
    service = ImageService(provider, max_concurrency=max_concurrency, predictions_per_minute=600)
    reference = _reference()
    started = time.perf_counter()
    responses = await asyncio.gather(
        *(service.edit(f"{tag} call {i}", [reference], seed=i) for i in range(calls))
    )
    wall = time.perf_counter() - started
    await service.aclose()
    latencies = [r.latency_ms / 1000 for r in responses]
    return {
        "calls": calls,
        "max_concurrency": max_concurrency,
        "wall_s": wall,
        "p50_s": statistics.median(latencies),
        "max_s": max(latencies),
    }


async def main(calls: int, hold: float) -> float:
    with FakeReplicateServer(processing_s=hold) as server:
        await _run(server, 1, 1, "warm-up")  # first-use costs (imports, client set-up)
        single = await _run(server, 1, calls, "single")
        concurrent = await _run(server, calls, calls, "concurrent")
        limited = await _run(server, calls, 8, "limited")
    ratio = concurrent["wall_s"] / single["wall_s"]
    print(f"fake Replicate server holding each prediction {hold:g} s; Prefer: wait; PNG outputs")
    print(f"{'scenario':<28}{'calls':>6}{'limit':>7}{'wall s':>9}{'p50 s':>8}{'max s':>8}")
    for name, row in (
        ("single edit", single),
        (f"{calls} concurrent edits", concurrent),
        (f"{calls} edits, limit 8", limited),
    ):
        print(
            f"{name:<28}{row['calls']:>6}{row['max_concurrency']:>7}{row['wall_s']:>9.3f}"
            f"{row['p50_s']:>8.3f}{row['max_s']:>8.3f}"
        )
    verdict = "OK" if ratio <= 1.3 else "ABOVE TARGET"
    print(f"ratio {calls} concurrent / single: {ratio:.2f}x (target <= 1.3x) {verdict}")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=32)
    parser.add_argument("--hold", type=float, default=1.0, help="seconds per prediction")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.hold))
