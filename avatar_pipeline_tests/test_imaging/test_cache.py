"""The idempotent request cache: identical seeded requests pay the provider once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from avatar_pipeline.imaging.cache import ImageCache, request_fingerprint
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import RecordingProvider, png_bytes

KONTEXT = "black-forest-labs/flux-kontext-pro"
Make = Callable[..., ReplicateProvider]


async def test_same_request_twice_calls_the_provider_once(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    service = ImageService(make_provider(), cache=ImageCache(tmp_path))
    reference = png_bytes()
    first = await service.edit("waving", [reference], negative_prompt="blurry", seed=9)
    second = await service.edit("waving", [reference], negative_prompt="blurry", seed=9)

    assert len(fake_replicate.creates()) == 1
    assert not first.cached and second.cached
    assert second.images == first.images
    assert second.fingerprint == first.fingerprint
    assert (second.model, second.model_version, second.seed) == (
        first.model,
        first.model_version,
        first.seed,
    )
    assert second.cost_usd == 0.0
    assert second.extra["original_cost_usd"] == first.cost_usd == 0.04
    assert second.prediction_ids == first.prediction_ids
    # On disk: PNG + JSON provenance named by fingerprint, and nothing half-written.
    folder = tmp_path / first.fingerprint[:2]
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{first.fingerprint}.0.png",
        f"{first.fingerprint}.json",
    ]
    record = json.loads((folder / f"{first.fingerprint}.json").read_text())
    assert record["response"]["model_version"] == first.model_version

    # Anything that decides the output makes a new request.
    await service.edit("waving", [reference], negative_prompt="blurry", seed=10)
    await service.edit("waving", [reference], negative_prompt="blurry", seed=9, edit_strength=0.2)
    await service.edit("waving", [png_bytes(colour=(1, 2, 3))], negative_prompt="blurry", seed=9)
    assert len(fake_replicate.creates()) == 4
    await service.aclose()


async def test_a_model_version_change_makes_a_new_call(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    reference = png_bytes()
    v1 = fake_replicate.latest_versions[KONTEXT]
    cache = ImageCache(tmp_path)
    old = ImageService(make_provider(pinned_versions={KONTEXT: v1}), cache=cache)
    before = await old.edit("waving", [reference], seed=3)
    assert (await old.edit("waving", [reference], seed=3)).cached

    v2 = "kontext-v2" + "0" * 54
    fake_replicate.set_latest_version(KONTEXT, v2)
    new = ImageService(make_provider(pinned_versions={KONTEXT: v2}), cache=cache)
    after = await new.edit("waving", [reference], seed=3)

    assert not after.cached
    assert after.model_version == v2 != before.model_version
    assert after.fingerprint != before.fingerprint
    assert [c.body["version"] for c in fake_replicate.creates()] == [v1, v2]
    await old.aclose()


async def test_unpinned_model_is_idempotent_across_processes_and_sees_upgrades(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    reference = png_bytes()
    first = ImageService(make_provider(), cache=ImageCache(tmp_path))
    paid = await first.edit("waving", [reference], seed=3)
    assert paid.model_version == fake_replicate.latest_versions[KONTEXT]
    # The prediction answered "hidden" (an official model); the version recorded is the one the
    # models endpoint reported, looked up before the call (only the model this call runs).
    assert {p["version"] for p in _predictions(fake_replicate)} == {"hidden"}
    assert len(fake_replicate.recorded("model")) == 1

    # A fresh process (new provider and service, same cache directory) pays nothing.
    second = ImageService(make_provider(), cache=ImageCache(tmp_path))
    again = await second.edit("waving", [reference], seed=3)
    assert again.cached and again.images == paid.images
    assert len(fake_replicate.creates()) == 1

    # After an upgrade, the next version lookup (the upgrade schedule) changes the request.
    fake_replicate.set_latest_version(KONTEXT, "kontext-v2" + "0" * 54)
    assert (await second.edit("waving", [reference], seed=3)).cached  # not yet looked up
    await second.latest_model_versions()
    upgraded = await second.edit("waving", [reference], seed=3)
    assert not upgraded.cached and upgraded.model_version == "kontext-v2" + "0" * 54
    assert len(fake_replicate.creates()) == 2
    await first.aclose()
    await second.aclose()


async def test_concurrent_first_calls_share_one_version_lookup(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    service = ImageService(make_provider(), cache=ImageCache(tmp_path))
    await asyncio.gather(*(service.edit(f"p{i}", [png_bytes()], seed=i) for i in range(5)))
    assert len(fake_replicate.recorded("model")) == 1  # one lookup of the model they run
    await service.aclose()


async def test_a_failed_version_lookup_does_not_fail_the_call(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    fake_replicate.latest_versions.pop("google/imagen-4")  # the lookup gets a 404
    service = ImageService(make_provider(), cache=ImageCache(tmp_path))
    response = await service.edit("waving", [png_bytes()], seed=3)
    assert response.model_version == fake_replicate.latest_versions[KONTEXT]
    await service.aclose()


async def test_requests_without_a_seed_are_not_cached(tmp_path: Path) -> None:
    provider = RecordingProvider("cache-noseed")
    service = ImageService(provider, cache=ImageCache(tmp_path))
    first = await service.generate("a cat")
    second = await service.generate("a cat")
    assert provider.calls == 2 and not first.cached and not second.cached
    assert first.fingerprint == second.fingerprint  # still identifies the request
    assert not any(tmp_path.iterdir())


async def test_a_corrupt_cache_entry_is_a_miss(tmp_path: Path) -> None:
    provider = RecordingProvider("cache-corrupt")
    service = ImageService(provider, cache=ImageCache(tmp_path))
    first = await service.generate("a cat", num_images=2, seed=1)
    (tmp_path / first.fingerprint[:2] / f"{first.fingerprint}.1.png").write_bytes(b"truncated")
    again = await service.generate("a cat", num_images=2, seed=1)
    assert provider.calls == 2 and not again.cached
    assert (await service.generate("a cat", num_images=2, seed=1)).cached  # rewritten


def test_fingerprint_covers_every_input() -> None:
    base = {
        "provider": "replicate",
        "model": KONTEXT,
        "model_version": "v1",
        "operation": "edit",
        "prompt": "p",
        "negative_prompt": None,
        "reference_hashes": ("a" * 64,),
        "seed": 1,
        "width": 1024,
        "height": 1024,
        "edit_strength": 0.7,
        "num_images": 1,
    }
    changes = {
        "provider": "offline",
        "model": "other/model",
        "model_version": "v2",
        "operation": "generate",
        "prompt": "q",
        "negative_prompt": "n",
        "reference_hashes": ("b" * 64,),
        "seed": 2,
        "width": 512,
        "height": 512,
        "edit_strength": 0.5,
        "num_images": 2,
    }
    original = request_fingerprint(**base)  # type: ignore[arg-type]
    assert original == request_fingerprint(**base)  # type: ignore[arg-type]
    for key, value in changes.items():
        assert request_fingerprint(**{**base, key: value}) != original, key  # type: ignore[arg-type]


def _predictions(fake: FakeReplicateServer) -> list[dict]:
    return [fake.prediction_json(pid, "") for pid in list(fake.predictions)]
