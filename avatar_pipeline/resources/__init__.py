"""Dagster resources over the plain layers, and the one resource set per environment."""

from avatar_pipeline.resources.catalog import CatalogResource
from avatar_pipeline.resources.consistency import ConsistencyResource
from avatar_pipeline.resources.environments import resources_for_environment
from avatar_pipeline.resources.image_service import (
    ImageServiceResource,
    OfflineImageServiceResource,
    ReplicateImageServiceResource,
)
from avatar_pipeline.resources.object_store import (
    LocalObjectStoreResource,
    ObjectStoreResource,
    S3ObjectStoreResource,
)

__all__ = [
    "CatalogResource",
    "ConsistencyResource",
    "ImageServiceResource",
    "LocalObjectStoreResource",
    "ObjectStoreResource",
    "OfflineImageServiceResource",
    "ReplicateImageServiceResource",
    "S3ObjectStoreResource",
    "resources_for_environment",
]
