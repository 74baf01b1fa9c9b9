"""One resource set per environment, picked by ``AVATAR_ENVIRONMENT`` (default ``local``).

Every environment reads the same :class:`~avatar_pipeline.settings.Settings`; what differs is
which implementation each resource gets. Secrets are passed as ``EnvVar`` so Dagster never
shows or stores their values.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from avatar_pipeline.resources.catalog import CatalogResource
from avatar_pipeline.resources.consistency import ConsistencyResource
from avatar_pipeline.resources.image_service import (
    OfflineImageServiceResource,
    ReplicateImageServiceResource,
)
from avatar_pipeline.resources.object_store import (
    LocalObjectStoreResource,
    S3ObjectStoreResource,
)
from avatar_pipeline.settings import DEV_SIGNING_SECRET, Settings


def _secret(env_name: str, fallback: str | None) -> Any:
    if os.environ.get(env_name):
        return dg.EnvVar(env_name)
    return fallback


def _budget_fields(settings: Settings) -> dict[str, Any]:
    """fleet: the instance-wide provider budget lives in the catalog database."""
    if not settings.instance_budget:
        return {}
    return {
        "budget_database_url": settings.catalog_url,
        "budget_max_in_flight": settings.provider_max_in_flight,
        "budget_creates_per_minute": settings.provider_creates_per_minute,
        "budget_lease_ttl_seconds": settings.provider_lease_ttl_seconds,
        "budget_auto_migrate": settings.environment != "production",
    }


def resources_for_environment(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings()
    resources: dict[str, Any] = {
        "catalog": CatalogResource(
            database_url=settings.catalog_url,
            auto_migrate=settings.environment != "production",
        ),
        "consistency": ConsistencyResource(
            embedder=settings.embedder,
            clip_model=settings.clip_model,
            clip_pretrained=settings.clip_pretrained,
            device=settings.clip_device,
            embedding_cache_dir=str(settings.embedding_cache_dir),
            reports_dir=str(settings.reports_dir),
            candidates_per_slot=settings.candidates_per_slot,
            kit_cost_budget_usd=settings.kit_cost_budget_usd,
            unmeasured_policy=settings.unmeasured_policy,
        ),
    }
    if settings.storage_backend == "s3":
        resources["object_store"] = S3ObjectStoreResource(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            avatars_bucket=settings.s3_avatars_bucket,
            scenes_bucket=settings.s3_scenes_bucket,
            access_key_id=_secret("AVATAR_S3_ACCESS_KEY_ID", None),
            secret_access_key=_secret("AVATAR_S3_SECRET_ACCESS_KEY", None),
            signed_url_ttl_seconds=settings.signed_url_ttl_seconds,
        )
    else:
        resources["object_store"] = LocalObjectStoreResource(
            root=str(settings.local_store_root),
            signing_secret=_secret("AVATAR_SIGNING_SECRET", DEV_SIGNING_SECRET),
            public_base_url=settings.public_base_url,
            signed_url_ttl_seconds=settings.signed_url_ttl_seconds,
        )
    if settings.image_provider == "replicate":
        resources["image_service"] = ReplicateImageServiceResource(
            api_token=dg.EnvVar("REPLICATE_API_TOKEN"),
            base_url=settings.replicate_base_url,
            edit_model=settings.replicate_edit_model,
            multi_reference_model=settings.replicate_multi_reference_model,
            generate_model=settings.replicate_generate_model,
            google_model=settings.replicate_google_model,
            use_google_for_generate=settings.replicate_use_google,
            google_edit_model=settings.replicate_google_edit_model,
            use_google_for_edit=settings.replicate_use_google_for_edit,
            pinned_versions=dict(settings.replicate_pinned_versions),
            max_prediction_attempts=settings.replicate_max_prediction_attempts,
            timeout_seconds=settings.replicate_timeout_seconds,
            max_retries=settings.replicate_max_retries,
            cache_dir=str(settings.image_cache_dir),
            max_concurrency=settings.replicate_max_concurrency,
            predictions_per_minute=settings.replicate_predictions_per_minute,
            **_budget_fields(settings),
        )
    else:
        resources["image_service"] = OfflineImageServiceResource(
            latency_seconds=settings.offline_latency_seconds,
            cache_dir=str(settings.image_cache_dir),
            **_budget_fields(settings),
        )
    return resources
