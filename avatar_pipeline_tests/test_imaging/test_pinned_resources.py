"""AVATAR_REPLICATE_PINNED_VERSIONS reaches the Dagster resources and the calls they make."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import dagster as dg
import pytest

from avatar_pipeline.resources import resources_for_environment
from avatar_pipeline.resources.image_service import ImageServiceResource
from avatar_pipeline.settings import Settings
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

KONTEXT = "black-forest-labs/flux-kontext-pro"


def test_pinned_versions_flow_from_the_environment_into_a_dagster_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicateServer
) -> None:
    pinned = fake_replicate.latest_versions[KONTEXT]
    fake_replicate.bump_version(KONTEXT)  # newer exists: only the pin explains using `pinned`
    monkeypatch.setenv("AVATAR_IMAGE_PROVIDER", "replicate")
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("AVATAR_REPLICATE_BASE_URL", fake_replicate.base_url)
    monkeypatch.setenv("AVATAR_REPLICATE_PINNED_VERSIONS", json.dumps({KONTEXT: pinned}))
    monkeypatch.setenv("AVATAR_REPLICATE_MAX_PREDICTION_ATTEMPTS", "2")
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("AVATAR_PROVIDER_BUDGET", "process")  # the fleet budget: own tests
    resource = resources_for_environment(Settings())["image_service"]
    assert resource.pinned_versions == {KONTEXT: pinned}
    assert resource.max_prediction_attempts == 2

    seen: dict[str, object] = {}

    @dg.asset
    def uses_the_provider(image_service: ImageServiceResource) -> None:
        service = image_service.get_service()
        seen["pinned"] = dict(service.provider.pinned_versions)  # type: ignore[attr-defined]
        seen["version"] = asyncio.run(service.edit("waving", [png_bytes()], seed=1)).model_version

    result = dg.materialize([uses_the_provider], resources={"image_service": resource})
    assert result.success
    assert seen == {"pinned": {KONTEXT: pinned}, "version": pinned}
    (create,) = fake_replicate.creates()
    assert create.path == "/v1/predictions" and create.body["version"] == pinned
