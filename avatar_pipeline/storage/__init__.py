"""Object storage: the spec's ``avatars``/``scenes`` buckets on local disk or S3."""

from typing import TYPE_CHECKING, Any

from avatar_pipeline.storage.base import (
    InvalidSignatureError,
    NotPublicError,
    ObjectNotFoundError,
    ObjectStore,
    StorageError,
    StoredObject,
)
from avatar_pipeline.storage.factory import build_object_store
from avatar_pipeline.storage.keys import BUCKETS, PUBLIC_BUCKETS, Bucket, InvalidKeyError
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline.storage.signing import sign, verify_signed_request

if TYPE_CHECKING:
    from avatar_pipeline.storage.s3 import S3ObjectStore


def __getattr__(name: str) -> Any:
    # boto3 takes about a second to import: only a process that uses S3 pays for it
    if name == "S3ObjectStore":
        from avatar_pipeline.storage.s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUCKETS",
    "PUBLIC_BUCKETS",
    "Bucket",
    "InvalidKeyError",
    "InvalidSignatureError",
    "LocalObjectStore",
    "NotPublicError",
    "ObjectNotFoundError",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "StoredObject",
    "build_object_store",
    "sign",
    "verify_signed_request",
]
