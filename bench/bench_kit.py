"""Benchmark: one full kit (2 anchors, 8 expressions, 4 poses) through the Dagster asset,
against the offline provider with a simulated latency per image (default 2 s).

Reports the wall time as a ratio to the kit's critical path (portrait -> full body -> poses =
3 x latency) and to the sequential sum (14 x latency), plus a floor measured in the same run:
the same dependency graph as bare ``asyncio.sleep`` calls (no rendering, scoring, storage or
Dagster). Target: <= 1.5x the critical path.

    .venv/bin/python bench/bench_kit.py [--latency 2.0] [--size 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fixtures

import dagster as dg


async def _floor(latency: float) -> None:
    async def call() -> None:
        await asyncio.sleep(latency)

    await call()  # portrait
    fullbody = asyncio.create_task(call())
    expressions = [asyncio.create_task(call()) for _ in range(8)]

    async def pose() -> None:
        await fullbody
        await call()

    await asyncio.gather(fullbody, *expressions, *(pose() for _ in range(4)))


def _pipeline_once(latency: float, size: int) -> tuple[float, dict[str, float]]:
    from avatar_pipeline.resources import OfflineImageServiceResource
    from avatar_pipeline_tests.kit_runs import materialize_kit
    from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources

    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        root = Path(tmp)
        resources = make_resources(
            root,
            image_service=OfflineImageServiceResource(
                cache_dir=str(root / "image_cache"), image_size=size, latency_seconds=latency
            ),
        )
        kit_id = create_kit(resources)
        resources["catalog"].session_factory()  # migrate before timing
        resources["consistency"].get_embedder()
        start = time.perf_counter()
        result = materialize_kit(resources, instance, kit_id)
        elapsed = time.perf_counter() - start
        assert result.success, "kit run failed"
        steps = {
            e.step_key: e.event_specific_data.duration_ms / 1000
            for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS"
        }
        return elapsed, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    floors, runs, images, reports = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        start = time.perf_counter()
        asyncio.run(_floor(args.latency))
        floors.append(time.perf_counter() - start)
        elapsed, steps = _pipeline_once(args.latency, args.size)
        runs.append(elapsed)
        images.append(steps["kit_images"])
        reports.append(steps["consistency_report"])

    critical, sequential = 3 * args.latency, 14 * args.latency
    wall, floor = statistics.median(runs), statistics.median(floors)
    print(
        f"one kit, 14 images, {args.latency:.1f} s per image, {args.size}px, "
        f"median of {args.repeats}"
    )
    print(
        f"| measure | s | x critical path ({critical:.1f} s) | x sequential ({sequential:.1f} s) |"
    )
    print("|---|---|---|---|")
    rows = (
        ("bare asyncio graph (floor)", floor),
        ("kit_images step (14 images: generate, score, store, promote)", statistics.median(images)),
        ("consistency_report step", statistics.median(reports)),
        ("whole Dagster run (both steps + run overhead)", wall),
    )
    for label, value in rows:
        print(f"| {label} | {value:.2f} | {value / critical:.2f} | {value / sequential:.2f} |")
    kit = statistics.median(images)
    verdict = "met" if kit <= 1.5 * critical else "NOT met"
    print(
        f"kit images / critical path = {kit / critical:.2f}x (target <= 1.5x: {verdict}); "
        f"whole run = {wall / critical:.2f}x the critical path"
    )


if __name__ == "__main__":
    main()
