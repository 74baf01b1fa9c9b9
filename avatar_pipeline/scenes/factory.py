"""Build the scene writer the settings ask for."""

from __future__ import annotations

from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.writer import OfflineSceneWriter, SceneWriter
from avatar_pipeline.settings import Settings


def build_scene_writer(
    settings: Settings, image_service: ImageService | None = None
) -> SceneWriter:
    """``offline`` (default) or ``replicate``: the language model runs on the image service's
    Replicate provider and limits when it has one, else on a provider built from the settings
    (REPLICATE_API_TOKEN) with the process-wide Replicate limits."""
    if settings.scene_writer != "replicate":
        return OfflineSceneWriter()
    from avatar_pipeline.imaging.limits import shared_limits
    from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
    from avatar_pipeline.scenes.replicate_writer import ReplicateSceneWriter

    if image_service is not None and isinstance(image_service.provider, ReplicateProvider):
        provider, limits = image_service.provider, image_service.limits
    else:
        provider = ReplicateProvider.from_settings(settings)
        limits = shared_limits(
            provider.name,
            settings.replicate_max_concurrency,
            settings.replicate_predictions_per_minute,
        )
    return ReplicateSceneWriter(
        provider,
        limits,
        model=settings.replicate_language_model,
        timeout_s=settings.scene_writer_timeout_seconds,
    )
