"""The object store as Dagster resources: local directory (default) or any S3 endpoint."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from avatar_pipeline.storage.base import ObjectStore


class ObjectStoreResource(dg.ConfigurableResource):
    """Base: assets type-hint this, tests and environments swap the implementation."""

    def get_store(self) -> ObjectStore:
        raise NotImplementedError("use LocalObjectStoreResource or S3ObjectStoreResource")


class LocalObjectStoreResource(ObjectStoreResource):
    root: str = Field(description="Directory holding the avatars/ and scenes/ buckets.")
    signing_secret: str = Field(description="HMAC secret for signed URLs (use an EnvVar).")
    public_base_url: str = Field(default="http://127.0.0.1:8000")
    signed_url_ttl_seconds: int = Field(default=900)
    _store: ObjectStore | None = PrivateAttr(default=None)

    def get_store(self) -> ObjectStore:
        if self._store is None:
            from pathlib import Path

            from avatar_pipeline.storage.local import LocalObjectStore

            self._store = LocalObjectStore(
                Path(self.root),
                signing_secret=self.signing_secret,
                public_base_url=self.public_base_url,
                default_ttl=self.signed_url_ttl_seconds,
            )
        return self._store


class S3ObjectStoreResource(ObjectStoreResource):
    endpoint_url: str | None = Field(default=None, description="Any S3-compatible endpoint.")
    region: str = Field(default="us-east-1")
    avatars_bucket: str = Field(default="avatars")
    scenes_bucket: str = Field(default="scenes")
    access_key_id: str | None = Field(default=None, description="Use EnvVar; never logged.")
    secret_access_key: str | None = Field(default=None, description="Use EnvVar; never logged.")
    signed_url_ttl_seconds: int = Field(default=900)
    _store: ObjectStore | None = PrivateAttr(default=None)

    def get_store(self) -> ObjectStore:
        if self._store is None:
            from avatar_pipeline.storage.s3 import S3ObjectStore

            self._store = S3ObjectStore(
                endpoint_url=self.endpoint_url,
                region=self.region,
                bucket_names={"avatars": self.avatars_bucket, "scenes": self.scenes_bucket},
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
                default_ttl=self.signed_url_ttl_seconds,
            )
        return self._store
