"""build_image_service: the provider, cache and limits the settings ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_pipeline.imaging.factory import build_image_service
from avatar_pipeline.imaging.providers.replicate import (
    ReplicateConfigurationError,
    ReplicateProvider,
)
from avatar_pipeline.settings import Settings
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import RecordingProvider, png_bytes


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, _env_file=None, **values)  # type: ignore[arg-type]


async def test_replicate_service_from_settings_talks_to_the_configured_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeReplicateServer() as server:
        monkeypatch.setenv("REPLICATE_API_TOKEN", server.token)
        pinned = {"black-forest-labs/flux-kontext-pro": server.latest_versions[
            "black-forest-labs/flux-kontext-pro"
        ]}  # fmt: skip
        settings = _settings(
            tmp_path,
            image_provider="replicate",
            replicate_base_url=server.base_url,
            replicate_max_concurrency=5,
            replicate_predictions_per_minute=100,
            replicate_pinned_versions=pinned,
        )
        service = build_image_service(settings)
        assert isinstance(service.provider, ReplicateProvider)
        assert service.provider.pinned_versions == pinned
        assert (service.limits.concurrency.limit, service.limits.rate.limit) == (5, 100)
        assert service.cache is not None and service.cache.root == settings.image_cache_dir

        first = await service.edit("waving", [png_bytes()], seed=4)
        again = await service.edit("waving", [png_bytes()], seed=4)
        assert again.cached and again.images == first.images
        assert len(server.creates()) == 1
        assert any(settings.image_cache_dir.rglob(f"{first.fingerprint}.json"))
        await service.aclose()


def test_replicate_without_a_token_is_refused_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    settings = _settings(tmp_path, image_provider="replicate")
    with pytest.raises(ReplicateConfigurationError, match="REPLICATE_API_TOKEN"):
        build_image_service(settings)


def test_an_explicit_provider_wins(tmp_path: Path) -> None:
    provider = RecordingProvider("factory-explicit")
    service = build_image_service(_settings(tmp_path), provider=provider)
    assert service.provider is provider


def test_offline_is_the_default(tmp_path: Path) -> None:
    offline = pytest.importorskip("avatar_pipeline.imaging.providers.offline")
    service = build_image_service(_settings(tmp_path, offline_latency_seconds=0.0))
    assert isinstance(service.provider, offline.OfflineProvider)
