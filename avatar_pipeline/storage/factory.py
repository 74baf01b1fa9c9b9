"""Build the configured object store from the one ``Settings`` object."""

from __future__ import annotations

from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore
from avatar_pipeline.storage.local import LocalObjectStore


def build_object_store(settings: Settings, *, create_buckets: bool = False) -> ObjectStore:
    """``AVATAR_STORAGE_BACKEND=local`` (default) or ``s3``; secrets unwrapped only here."""
    if settings.storage_backend == "local":
        return LocalObjectStore(
            settings.local_store_root,
            signing_secret=settings.signing_secret.get_secret_value(),
            public_base_url=settings.public_base_url,
            default_ttl=settings.signed_url_ttl_seconds,
        )
    if settings.storage_backend == "s3":
        from avatar_pipeline.storage.s3 import S3ObjectStore  # boto3 only when used

        key_id = settings.s3_access_key_id
        secret = settings.s3_secret_access_key
        return S3ObjectStore(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            bucket_names={
                "avatars": settings.s3_avatars_bucket,
                "scenes": settings.s3_scenes_bucket,
            },
            access_key_id=key_id.get_secret_value() if key_id is not None else None,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            default_ttl=settings.signed_url_ttl_seconds,
            create_buckets=create_buckets,
        )
    raise ValueError(
        f"AVATAR_STORAGE_BACKEND={settings.storage_backend!r} is not supported; use 'local' or 's3'"
    )
