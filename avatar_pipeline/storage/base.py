"""The object store interface shared by the local-directory and S3 backends."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from avatar_pipeline.storage.keys import Bucket


class StorageError(RuntimeError):
    """The object store failed or refused an operation."""


class ObjectNotFoundError(StorageError, KeyError):
    """No object at that bucket/path."""


class InvalidSignatureError(StorageError):
    """A signed URL is expired, tampered with or malformed."""


@dataclass(frozen=True)
class StoredObject:
    bucket: Bucket
    path: str
    size_bytes: int
    content_type: str


class ObjectStore(abc.ABC):
    """Put/get/list/delete bytes under ``(bucket, path)``; hand out signed, expiring URLs."""

    @abc.abstractmethod
    def put(
        self, bucket: Bucket, path: str, data: bytes, content_type: str = "image/png"
    ) -> StoredObject: ...

    @abc.abstractmethod
    def get(self, bucket: Bucket, path: str) -> bytes:
        """Return the bytes; raise ObjectNotFoundError if absent."""

    @abc.abstractmethod
    def exists(self, bucket: Bucket, path: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, bucket: Bucket, path: str) -> None:
        """Delete; deleting an absent object is not an error."""

    @abc.abstractmethod
    def list(self, bucket: Bucket, prefix: str = "") -> list[str]:
        """Paths under ``prefix`` (e.g. ``kit_prefix(kit_id)``), sorted."""

    @abc.abstractmethod
    def signed_url(self, bucket: Bucket, path: str, expires_in: int | None = None) -> str:
        """A URL that grants read access until it expires."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line saying where objects live (for the CLI's ``where``)."""
