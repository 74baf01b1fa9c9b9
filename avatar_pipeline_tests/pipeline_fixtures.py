"""Resources for running the Dagster graph on a temporary directory, and a kit factory."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import PrivateAttr

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.consistency.types import Thresholds
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, ProviderResult
from avatar_pipeline.resources import (
    CatalogResource,
    ConsistencyResource,
    LocalObjectStoreResource,
    OfflineImageServiceResource,
)

PROVIDER_CALLS: Counter[str] = Counter()


class CountingProvider(ImageProvider):
    """The offline provider, counting calls per (tag, operation): the boundary we observe."""

    def __init__(self, inner: ImageProvider, tag: str):
        self.inner, self.tag, self.name = inner, tag, inner.name

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        PROVIDER_CALLS[f"{self.tag}:generate"] += 1
        return await self.inner.generate(request)

    async def edit(self, request: EditRequest) -> ProviderResult:
        PROVIDER_CALLS[f"{self.tag}:edit"] += 1
        return await self.inner.edit(request)

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        return self.inner.model_for(operation, reference_count)

    async def latest_model_versions(self) -> dict[str, str]:
        return await self.inner.latest_model_versions()


class CountingOfflineImageServiceResource(OfflineImageServiceResource):
    tag: str = "default"

    def build_provider(self) -> ImageProvider:
        return CountingProvider(
            OfflineProvider(latency_seconds=self.latency_seconds, model_version=self.model_version),
            self.tag,
        )


class StrictConsistencyResource(ConsistencyResource):
    """A consistency gate nothing derived can pass (to exercise the failing path)."""

    _strict: bool = PrivateAttr(default=True)

    def get_thresholds(self) -> Thresholds:
        base = super().get_thresholds()
        return Thresholds(identity_min=0.9999, copy_max_hamming=base.copy_max_hamming)


def strict_gate(root: Path) -> StrictConsistencyResource:
    """The consistency resource of ``make_resources(root)``, with a gate nothing derived passes."""
    return StrictConsistencyResource(
        embedder="perceptual",
        embedding_cache_dir=str(root / "embeddings"),
        reports_dir=str(root / "reports"),
    )


def provider_calls(tag: str) -> int:
    return sum(v for k, v in PROVIDER_CALLS.items() if k.startswith(f"{tag}:"))


def make_resources(
    root: Path, database_url: str | None = None, *, tag: str | None = None, **overrides: Any
) -> dict[str, Any]:
    tag = tag or uuid.uuid4().hex[:8]
    resources: dict[str, Any] = {
        "catalog": CatalogResource(database_url=database_url or f"sqlite:///{root / 'catalog.db'}"),
        "object_store": LocalObjectStoreResource(
            root=str(root / "objects"), signing_secret="test-secret-not-default"
        ),
        "image_service": CountingOfflineImageServiceResource(
            cache_dir=str(root / "image_cache"), image_size=384, tag=tag
        ),
        "consistency": ConsistencyResource(
            embedder="perceptual",
            embedding_cache_dir=str(root / "embeddings"),
            reports_dir=str(root / "reports"),
        ),
    }
    resources.update(overrides)
    return resources


KIT_ID_NAMESPACE = uuid.UUID("6f1c2a52-4be5-4d8e-9d0e-0a7a3c1b2d10")


def create_kit(resources: dict[str, Any], name: str = "Yuki Default", **fields: Any) -> str:
    """Create a kit with a stable id per name: seeds derive from the kit id, so every run of a
    test renders the same images and meets the same gate (see the README on false rejections).
    """
    catalog: CatalogResource = resources["catalog"]
    with catalog.session() as session:
        character = repo.create_character(session, name=fields.pop("character", "Yuki"))
        kit = repo.create_kit(
            session,
            name=name,
            appearance_prompt=fields.pop(
                "appearance_prompt",
                "young woman, shoulder-length black hair, warm brown eyes, cream cardigan",
            ),
            style_prompt=fields.pop("style_prompt", "anime style, soft cel shading"),
            negative_prompt=fields.pop("negative_prompt", "photorealistic, multiple people"),
            character_id=character.id,
            kit_id=uuid.uuid5(KIT_ID_NAMESPACE, name),
            **fields,
        )
        return str(kit.id)


@pytest.fixture
def pipeline(tmp_path: Path) -> dict[str, Any]:
    return make_resources(tmp_path)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as inst:
        yield inst


MaterializeFn = Callable[..., dg.ExecuteInProcessResult]


class FlakyProvider(CountingProvider):
    """Fails every edit whose prompt mentions ``fail_on``; charges ``cost`` per image."""

    def __init__(self, inner: ImageProvider, tag: str, fail_on: str | None, cost: float):
        super().__init__(inner, tag)
        self.fail_on, self.cost = fail_on, cost

    async def _priced(self, result: ProviderResult) -> ProviderResult:
        from dataclasses import replace

        return replace(result, cost_usd=self.cost)

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        return await self._priced(await super().generate(request))

    async def edit(self, request: EditRequest) -> ProviderResult:
        from avatar_pipeline.imaging.types import PredictionFailedError

        if self.fail_on and self.fail_on in request.prompt:
            PROVIDER_CALLS[f"{self.tag}:failed"] += 1
            raise PredictionFailedError(
                f"prediction failed: model crashed on {self.fail_on!r}", provider="offline"
            )
        return await self._priced(await super().edit(request))


class FlakyImageServiceResource(CountingOfflineImageServiceResource):
    fail_on: str | None = None
    cost_per_image_usd: float = 0.0

    @property
    def estimated_cost_per_image_usd(self) -> float:
        return self.cost_per_image_usd

    def build_provider(self) -> ImageProvider:
        return FlakyProvider(
            OfflineProvider(latency_seconds=self.latency_seconds, model_version=self.model_version),
            self.tag,
            self.fail_on,
            self.cost_per_image_usd,
        )
