"""The object store interface shared by the local-directory and S3 backends."""

from __future__ import annotations

import abc
import mimetypes
from dataclasses import dataclass

from avatar_pipeline.storage.keys import PUBLIC_BUCKETS, Bucket, validate_bucket


class StorageError(RuntimeError):
    """The object store failed or refused an operation."""


class ObjectNotFoundError(StorageError, KeyError):
    """No object at that bucket/path."""


class InvalidSignatureError(StorageError):
    """A signed URL is expired, tampered with or malformed.

    ``reason`` is one of ``"expired"``, ``"bad_signature"`` or ``"malformed"`` so a caller
    can pick a status code without parsing the message.
    """

    def __init__(self, message: str, *, reason: str = "bad_signature") -> None:
        super().__init__(message)
        self.reason = reason


class NotPublicError(StorageError, ValueError):
    """An unsigned public URL was asked for a private bucket (``scenes``)."""


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

    def head(self, bucket: Bucket, path: str) -> StoredObject:
        """Size and content type of an object; raise ObjectNotFoundError if absent.

        Backends override this with a metadata-only lookup; this fallback reads the bytes.
        """
        data = self.get(bucket, path)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return StoredObject(bucket, path, len(data), content_type)

    def public_url(self, bucket: Bucket, path: str) -> str:
        """An unsigned URL for an object in a public bucket (``avatars`` only)."""
        raise NotImplementedError(f"{type(self).__name__} does not serve public URLs")

    def ensure_buckets(self) -> list[str]:
        """Create the ``avatars`` and ``scenes`` buckets where missing; return those created."""
        return []


def require_public_bucket(bucket: str) -> Bucket:
    """Return ``bucket`` if it is public-read; raise NotPublicError for private buckets."""
    bucket = validate_bucket(bucket)
    if bucket not in PUBLIC_BUCKETS:
        raise NotPublicError(
            f"bucket {bucket!r} is private: it has no public URL; use signed_url() instead"
        )
    return bucket
