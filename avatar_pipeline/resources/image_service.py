"""The ImageService as Dagster resources: offline renderer (default) or Replicate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from avatar_pipeline.imaging.cache import ImageCache
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.service import ImageService

if TYPE_CHECKING:
    from avatar_pipeline.catalog.provider_budget import ProviderBudget


class ImageServiceResource(dg.ConfigurableResource):
    """Base: ``get_service()`` gives an ImageService over one provider, with a request cache."""

    cache_dir: str | None = Field(
        default=None, description="Idempotent request cache; None disables it."
    )
    image_size: int = Field(default=1024, description="Width and height of generated images.")
    max_concurrency: int = Field(
        default=16,
        description="Provider calls at once, per process. A kit's widest layer is 9 calls "
        "(full body + 8 expressions), times candidates_per_slot.",
    )
    predictions_per_minute: int = Field(default=600, description="Replicate allows 600/min.")
    budget_database_url: str | None = Field(
        default=None,
        description="Catalog URL holding the instance-wide provider budget (fleet, migration "
        "0006); None: per-process limits only.",
    )
    budget_max_in_flight: int | None = Field(
        default=None, description="Instance-wide calls in flight (default: max_concurrency)."
    )
    budget_creates_per_minute: int | None = Field(
        default=None, description="Instance-wide creates/minute (default: predictions_per_minute)."
    )
    budget_lease_ttl_seconds: float = Field(default=60.0)
    budget_auto_migrate: bool = Field(
        default=False, description="Upgrade the catalog to head before first use (embedded)."
    )
    _service: ImageService | None = PrivateAttr(default=None)

    def build_provider(self) -> ImageProvider:
        raise NotImplementedError(
            "use OfflineImageServiceResource or ReplicateImageServiceResource"
        )

    @property
    def estimated_cost_per_image_usd(self) -> float:
        return 0.0

    def get_service(self) -> ImageService:
        if self._service is None:
            self._service = ImageService(
                self.build_provider(),
                cache=ImageCache(Path(self.cache_dir)) if self.cache_dir else None,
                max_concurrency=self.max_concurrency,
                predictions_per_minute=self.predictions_per_minute,
                budget=self.build_budget(),
            )
        return self._service

    def build_budget(self) -> ProviderBudget | None:
        if not self.budget_database_url:
            return None
        from avatar_pipeline.catalog.provider_budget import ProviderBudget

        return ProviderBudget(
            self.budget_database_url,
            self.budget_provider_name,
            max_in_flight=self.budget_max_in_flight or self.max_concurrency,
            creates_per_minute=self.budget_creates_per_minute or self.predictions_per_minute,
            lease_ttl_s=self.budget_lease_ttl_seconds,
            auto_migrate=self.budget_auto_migrate,
        )

    @property
    def budget_provider_name(self) -> str:
        return type(self).__name__.removesuffix("ImageServiceResource").lower() or "provider"


class OfflineImageServiceResource(ImageServiceResource):
    """The embedded default: a deterministic procedural renderer, no network, no account."""

    latency_seconds: float = Field(default=0.0, description="Simulated latency per image.")
    model_version: str = Field(default="offline-1", description="Bump to simulate an upgrade.")

    def build_provider(self) -> ImageProvider:
        from avatar_pipeline.imaging.providers.offline import OfflineProvider

        return OfflineProvider(
            latency_seconds=self.latency_seconds, model_version=self.model_version
        )


class ReplicateImageServiceResource(ImageServiceResource):
    """FLUX.1 Kontext Pro / FLUX 2 Pro (and a Google model) on Replicate."""

    api_token: str = Field(description="Replicate API token: EnvVar('REPLICATE_API_TOKEN') only.")
    base_url: str = Field(default="https://api.replicate.com/v1")
    edit_model: str = Field(default="black-forest-labs/flux-kontext-pro")
    multi_reference_model: str = Field(default="black-forest-labs/flux-2-pro")
    generate_model: str = Field(default="black-forest-labs/flux-1.1-pro")
    google_model: str = Field(default="google/imagen-4")
    use_google_for_generate: bool = Field(default=False)
    pinned_versions: dict[str, str] = Field(
        default_factory=dict, description="Model id -> version id to pin; unpinned use latest."
    )
    google_edit_model: str = Field(
        default="google/nano-banana", description="Google model for edit() (image_input)."
    )
    use_google_for_edit: bool = Field(default=False)
    max_prediction_attempts: int = Field(
        default=3, description="Predictions per call when one fails transiently (1 = no retry)."
    )
    version_ttl_seconds: float = Field(
        default=300.0, description="How long a looked-up latest model version is reused."
    )
    timeout_seconds: float = Field(default=300.0)
    max_retries: int = Field(default=4)

    @property
    def estimated_cost_per_image_usd(self) -> float:
        return 0.05

    def build_provider(self) -> ImageProvider:
        from avatar_pipeline.imaging.providers.replicate import ReplicateProvider

        return ReplicateProvider(
            api_token=self.api_token,
            base_url=self.base_url,
            edit_model=self.edit_model,
            multi_reference_model=self.multi_reference_model,
            generate_model=self.generate_model,
            google_model=self.google_model,
            use_google_for_generate=self.use_google_for_generate,
            google_edit_model=self.google_edit_model,
            use_google_for_edit=self.use_google_for_edit,
            pinned_versions=self.pinned_versions or None,
            timeout_s=self.timeout_seconds,
            max_retries=self.max_retries,
            max_prediction_attempts=self.max_prediction_attempts,
            version_ttl_s=self.version_ttl_seconds,
        )
