"""Benchmark: the scene flow end to end against the fake Replicate server (language model +
Kontext edit), one scene vs many concurrent scenes, and where a scene's time goes.

The fake holds every prediction ``--hold`` seconds (language model and image alike), so one
scene costs about two holds (write, then draw) plus our own work: catalog reads, the reference
read, scoring against the anchor (perceptual embedder), the object write and the row insert.
Concurrent scenes should overlap: N scenes in little more than one scene's time.

Run: ``.venv/bin/python bench/bench_scenes.py [--scenes 16] [--hold 0.5]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for avatar_pipeline_tests

from avatar_pipeline.catalog.db import make_engine, make_session_factory
from avatar_pipeline.catalog.migrate import upgrade_database
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.consistency import scene_embedder
from avatar_pipeline.scenes.factory import build_scene_writer
from avatar_pipeline.serving.scene_flow import SceneRequest, generate_scene
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.factory import build_object_store
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_scenes.kits import offline_kit_world, say


async def _scenes(n: int, context: dict) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    timings: list[dict] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        result = await generate_scene(
            SceneRequest(context["user"], context["episode"], width=512, height=512, seed=i),
            session_factory=context["factory"],
            store=context["store"],
            image_service=context["service"],
            url_ttl_seconds=60,
            writer=context["writer"],
            embedder=context["embedder"],
        )
        meta = result.scene.generation_metadata
        total = time.perf_counter() - t0
        writer_s = meta["scene_writer"]["basis"]["language_model"]["latency_ms"] / 1000
        image_s = meta["latency_ms"] / 1000
        timings.append({"total": total, "writer": writer_s, "image": image_s,
                        "own": total - writer_s - image_s})  # fmt: skip

    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started, timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--hold", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeReplicateServer(processing_s=args.hold) as fake:
        settings = Settings(_env_file=None, var_dir=Path(tmp), embedder="perceptual",  # type: ignore[call-arg]
                            scene_writer="replicate")  # fmt: skip
        upgrade_database(settings.catalog_url)
        engine = make_engine(settings.catalog_url)
        factory = make_session_factory(engine)
        store = build_object_store(settings, create_buckets=True)
        store.ensure_buckets()
        world = offline_kit_world(factory, store)
        say(factory, world, ("user", "Coffee at the cafe?"), ("assistant", "*smiles* Yes! 😊"))
        provider = ReplicateProvider(api_token=fake.token, base_url=fake.base_url,
                                     poll_interval_s=0.05)  # fmt: skip
        service = ImageService(provider, max_concurrency=64, predictions_per_minute=6000)
        context = {
            "user": world.user_id, "episode": world.episode_id, "factory": factory,
            "store": store, "service": service, "writer": build_scene_writer(settings, service),
            "embedder": scene_embedder(settings),
        }  # fmt: skip

        async def run() -> None:
            await _scenes(1, context)  # warm-up: clients, embedder, first decode
            single, [t] = await _scenes(1, context)
            many, ts = await _scenes(args.scenes, context)
            await service.aclose()
            print(f"hold {args.hold:.2f} s per prediction (language model, then the edit)")
            print(f"1 scene:   {single:.2f} s  (writer {t['writer']:.2f}, image {t['image']:.2f},"
                  f" our own work {t['own']:.2f})")  # fmt: skip
            own = statistics.median(x["own"] for x in ts)
            print(f"{args.scenes} scenes: {many:.2f} s wall = {many / single:.2f}x one scene;"
                  f" median own work per scene {own:.2f} s")  # fmt: skip

        asyncio.run(run())
        engine.dispose()


if __name__ == "__main__":
    main()
