"""Kits produced through the Replicate provider against the fake Replicate server, for tests.

The real ``replicate`` client talks HTTP to ``FakeReplicateServer`` (which answers like
Replicate: "hidden" versions of official models, the models endpoint's latest_version, the
Files API, injected faults); timings are shrunk so a kit takes a second or two at 256 px.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.resources import ReplicateImageServiceResource
from avatar_pipeline_tests.pipeline_fixtures import make_resources

KIT_PX = 256
FAKE_MEGAPIXELS = (KIT_PX * KIT_PX) / (1024 * 1024)


class FastReplicateImageServiceResource(ReplicateImageServiceResource):
    """The production resource with test timings (polls, backoff) for the fake server."""

    poll_interval_s: float = Field(default=0.02)
    backoff_base_s: float = Field(default=0.01)
    max_retry_after_s: float = Field(default=0.2)
    http_timeout_s: float = Field(default=5.0)

    def build_provider(self) -> ImageProvider:
        from avatar_pipeline.imaging.providers.replicate import ReplicateProvider

        return ReplicateProvider(
            api_token=self.api_token,
            base_url=self.base_url,
            pinned_versions=self.pinned_versions or None,
            timeout_s=self.timeout_seconds,
            max_retries=self.max_retries,
            max_prediction_attempts=self.max_prediction_attempts,
            version_ttl_s=self.version_ttl_seconds,
            poll_interval_s=self.poll_interval_s,
            backoff_base_s=self.backoff_base_s,
            max_retry_after_s=self.max_retry_after_s,
            prefer_wait_s=5,
            http_timeout_s=self.http_timeout_s,
        )


def replicate_resources(
    root: Path, base_url: str, token: str, database_url: str | None = None, **image: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_token": token,
        "base_url": base_url,
        "cache_dir": str(root / "image_cache"),
        "image_size": KIT_PX,
        "timeout_seconds": 10.0,
        "max_retries": 4,
        "version_ttl_seconds": 0.0,  # every call sees an upgrade at once
    }
    options.update(image)
    return make_resources(
        root, database_url, image_service=FastReplicateImageServiceResource(**options)
    )


def kit_generator(resources: dict[str, Any], **options: Any):  # type: ignore[no-untyped-def]
    """The KitGenerator the kit job would build from ``resources`` (no Dagster run)."""
    from avatar_pipeline.generation.generator import GenerationOptions, KitGenerator

    consistency = resources["consistency"]
    image_service = resources["image_service"]
    defaults: dict[str, Any] = {
        "width": image_service.image_size,
        "height": image_service.image_size,
        "estimated_cost_per_image_usd": image_service.estimated_cost_per_image_usd,
        "unmeasured_policy": consistency.unmeasured_policy,
        "improvement_tolerance": consistency.improvement_tolerance,
    }
    defaults.update(options)
    return KitGenerator(
        session_factory=resources["catalog"].session_factory(),
        store=resources["object_store"].get_store(),
        image_service=image_service.get_service(),
        embedder=consistency.get_embedder(),
        thresholds=consistency.get_thresholds(),
        options=GenerationOptions(**defaults),
    )


def kit_rows(resources: dict[str, Any], kit_id: str) -> list[Any]:
    import uuid

    from avatar_pipeline.catalog import repository as repo

    with resources["catalog"].session() as session:
        rows = repo.list_assets(session, uuid.UUID(kit_id))
        session.expunge_all()
        return rows
