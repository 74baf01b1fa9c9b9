"""Build the ImageService the settings ask for (used by the CLI and the scene API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from avatar_pipeline.imaging.cache import ImageCache
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.settings import Settings

if TYPE_CHECKING:
    from avatar_pipeline.catalog.provider_budget import ProviderBudget


def build_provider(settings: Settings) -> ImageProvider:
    """``offline`` (default: no account, no network) or ``replicate`` (REPLICATE_API_TOKEN)."""
    if settings.image_provider == "replicate":
        from avatar_pipeline.imaging.providers.replicate import ReplicateProvider

        return ReplicateProvider.from_settings(settings)
    from avatar_pipeline.imaging.providers.offline import OfflineProvider

    return OfflineProvider(latency_seconds=settings.offline_latency_seconds)


def build_image_service(
    settings: Settings, *, provider: ImageProvider | None = None
) -> ImageService:
    """An ImageService over ``provider`` (or the configured one), cached under var/image_cache."""
    provider = provider if provider is not None else build_provider(settings)
    provider_name = "replicate" if settings.image_provider == "replicate" else "offline"
    return ImageService(
        provider,
        cache=ImageCache(settings.image_cache_dir),
        max_concurrency=settings.replicate_max_concurrency,
        predictions_per_minute=settings.replicate_predictions_per_minute,
        budget=build_budget(settings, provider_name),
    )


def build_budget(settings: Settings, provider_name: str) -> ProviderBudget | None:
    """fleet: the instance-wide provider budget (catalog database), when the settings ask."""
    if not settings.instance_budget:
        return None
    from avatar_pipeline.catalog.provider_budget import ProviderBudget

    return ProviderBudget(
        settings.catalog_url,
        provider_name,
        max_in_flight=settings.provider_max_in_flight or settings.replicate_max_concurrency,
        creates_per_minute=settings.provider_creates_per_minute
        or settings.replicate_predictions_per_minute,
        lease_ttl_s=settings.provider_lease_ttl_seconds,
        auto_migrate=settings.environment != "production",
    )
