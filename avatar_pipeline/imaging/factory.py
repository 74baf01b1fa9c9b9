"""Build the ImageService the settings ask for (used by the CLI and the scene API)."""

from __future__ import annotations

from avatar_pipeline.imaging.cache import ImageCache
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.settings import Settings


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
    return ImageService(
        provider if provider is not None else build_provider(settings),
        cache=ImageCache(settings.image_cache_dir),
        max_concurrency=settings.replicate_max_concurrency,
        predictions_per_minute=settings.replicate_predictions_per_minute,
    )
