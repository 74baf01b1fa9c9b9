"""Replicate's versions as they really are: official models answer "version": "hidden".

The fake server reports "hidden" for every official model's prediction (like Replicate); the
version recorded in provenance and in the request fingerprint must be the real one: the pinned
version, else the ``latest_version.id`` the models endpoint reported for that call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from avatar_pipeline.imaging.cache import ImageCache, request_fingerprint
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

Make = Callable[..., ReplicateProvider]
KONTEXT = "black-forest-labs/flux-kontext-pro"
FLUX11 = "black-forest-labs/flux-1.1-pro"


def _no_hidden_anywhere(root: Path, *texts: str) -> None:
    """Regression guard: "hidden" is never recorded as a version or fingerprinted."""
    for text in texts:
        assert '"hidden"' not in text and "'hidden'" not in text, text[:300]
    for path in root.rglob("*.json"):
        record = json.loads(path.read_text())
        assert record["response"]["model_version"] not in ("hidden", "latest", ""), path


def test_fake_server_reports_hidden_for_official_models(fake_replicate: FakeReplicateServer):
    headers = {"Authorization": f"Bearer {fake_replicate.token}", "Prefer": "wait=5"}
    created = httpx.post(
        f"{fake_replicate.base_url}/models/{FLUX11}/predictions",
        json={"input": {"prompt": "x", "aspect_ratio": "1:1"}},
        headers=headers,
    ).json()
    assert created["version"] == "hidden"
    model = httpx.get(f"{fake_replicate.base_url}/models/{FLUX11}", headers=headers).json()
    assert model["latest_version"]["id"] == fake_replicate.latest_versions[FLUX11] != "hidden"


async def test_provenance_and_fingerprint_carry_the_real_version(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    service = ImageService(make_provider(), cache=ImageCache(tmp_path))
    reference = png_bytes()
    response = await service.edit("waving", [reference], seed=5)
    real = fake_replicate.latest_versions[KONTEXT]
    assert response.model_version == real
    assert response.extra["version_source"] == "latest_version lookup"
    # the prediction itself said "hidden"
    (prediction_id,) = response.prediction_ids
    assert fake_replicate.prediction_json(prediction_id, "")["version"] == "hidden"
    from avatar_pipeline.imaging.types import sha256_hex

    expected = request_fingerprint(
        provider="replicate",
        model=KONTEXT,
        model_version=real,
        operation="edit",
        prompt="waving",
        negative_prompt=None,
        reference_hashes=(sha256_hex(reference),),
        seed=5,
        width=1024,
        height=1024,
        edit_strength=0.7,
        num_images=1,
    )
    assert response.fingerprint == expected
    generated = await service.generate("portrait", seed=2)
    assert generated.model_version == fake_replicate.latest_versions[FLUX11]
    _no_hidden_anywhere(
        tmp_path,
        json.dumps(response.to_metadata(), default=str),
        json.dumps(generated.to_metadata(), default=str),
    )
    await service.aclose()


async def test_an_upgrade_is_seen_after_the_version_ttl_and_never_hits_the_old_cache(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    service = ImageService(make_provider(version_ttl_s=0.0), cache=ImageCache(tmp_path))
    reference = png_bytes()
    old = await service.edit("waving", [reference], seed=1)
    assert (await service.edit("waving", [reference], seed=1)).cached
    assert fake_replicate.create_count() == 1
    new_version = fake_replicate.bump_version(KONTEXT)
    upgraded = await service.edit("waving", [reference], seed=1)
    assert not upgraded.cached and upgraded.model_version == new_version != old.model_version
    assert upgraded.fingerprint != old.fingerprint
    assert fake_replicate.create_count() == 2
    _no_hidden_anywhere(tmp_path)
    await service.aclose()


async def test_a_pinned_version_is_recorded_and_run_by_version(
    fake_replicate: FakeReplicateServer, make_provider: Make, tmp_path: Path
) -> None:
    pinned = fake_replicate.latest_versions[KONTEXT]
    fake_replicate.bump_version(KONTEXT)  # a newer version exists; the pin wins
    service = ImageService(make_provider(pinned_versions={KONTEXT: pinned}))
    response = await service.edit("waving", [png_bytes()], seed=1)
    assert response.model_version == pinned and response.extra["version_source"] == "pinned"
    (create,) = fake_replicate.creates()
    assert create.path == "/v1/predictions" and create.body["version"] == pinned
    assert not fake_replicate.recorded("model")  # a pinned model needs no lookup
    await service.aclose()


async def test_a_model_without_a_latest_version_fails_clearly(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    import pytest

    from avatar_pipeline.imaging.types import ProviderError

    fake_replicate.latest_versions.pop(KONTEXT)
    service = ImageService(make_provider())
    with pytest.raises(ProviderError, match="look up"):
        await service.edit("waving", [png_bytes()], seed=1)
    assert fake_replicate.create_count() == 0  # nothing paid without a version to record
    await service.aclose()
