"""The embedded-default object store: files under ``root/<bucket>/<path>``.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a reader
never sees half an image. Content types live beside the data under ``root/.meta/`` so that
listing a bucket only ever sees objects. Signed URLs point at the serving API's
``GET /files/{bucket}/{path}``, which checks them with :func:`signing.verify_signed_request`.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from avatar_pipeline.files import TEMP_PREFIX, atomic_write
from avatar_pipeline.storage.base import (
    ObjectNotFoundError,
    ObjectStore,
    StorageError,
    StoredObject,
    require_public_bucket,
)
from avatar_pipeline.storage.keys import (
    BUCKETS,
    Bucket,
    InvalidKeyError,
    validate_bucket,
    validate_path,
    validate_prefix,
)
from avatar_pipeline.storage.signing import resolve_ttl, sign, verify_signed_request

_META_DIR = ".meta"  # not a valid bucket name, so it can never collide with one


class LocalObjectStore(ObjectStore):
    """Objects as files in a local directory; signed URLs served by the serving API."""

    def __init__(
        self,
        root: Path,
        *,
        signing_secret: str,
        public_base_url: str = "http://127.0.0.1:8000",
        default_ttl: int = 900,
    ) -> None:
        if not signing_secret:
            raise ValueError("LocalObjectStore needs a signing secret (AVATAR_SIGNING_SECRET)")
        self.root = Path(root).resolve()
        self.public_base_url = public_base_url.rstrip("/")
        self.default_ttl = resolve_ttl(None, default_ttl)
        self._signing_secret = signing_secret

    def __repr__(self) -> str:
        return (
            f"LocalObjectStore(root={str(self.root)!r}, public_base_url={self.public_base_url!r})"
        )

    # -- paths -------------------------------------------------------------------------------

    def _inside_root(self, candidate: Path, bucket: str, path: str) -> Path:
        # Defence in depth: keys are already validated, but a symlink inside the root could
        # still point elsewhere. Resolve it and refuse anything that lands outside the root.
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root):
            raise InvalidKeyError(
                f"object {bucket}/{path} resolves to {resolved}, outside the store root "
                f"{self.root}; remove the symlink that leads there"
            )
        return resolved

    def _object_file(self, bucket: str, path: str) -> Path:
        bucket = validate_bucket(bucket)
        path = validate_path(path)
        return self._inside_root(self.root / bucket / path, bucket, path)

    def _meta_file(self, bucket: str, path: str) -> Path:
        return self._inside_root(self.root / _META_DIR / bucket / path, bucket, path)

    # -- ObjectStore ---------------------------------------------------------------------------

    def put(
        self, bucket: Bucket, path: str, data: bytes, content_type: str = "image/png"
    ) -> StoredObject:
        target = self._object_file(bucket, path)
        meta = self._meta_file(bucket, path)
        try:
            atomic_write(meta, content_type.encode())
            atomic_write(target, bytes(data))
        except OSError as exc:
            raise StorageError(
                f"could not write {bucket}/{path} under {self.root}: {exc}; check that the "
                "directory is writable and the disk has space"
            ) from exc
        return StoredObject(bucket, path, len(data), content_type)

    def get(self, bucket: Bucket, path: str) -> bytes:
        target = self._object_file(bucket, path)
        try:
            return target.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object at {bucket}/{path} in {self.root}") from exc

    def head(self, bucket: Bucket, path: str) -> StoredObject:
        target = self._object_file(bucket, path)
        if not target.is_file():
            raise ObjectNotFoundError(f"no object at {bucket}/{path} in {self.root}")
        try:
            content_type = self._meta_file(bucket, path).read_text().strip()
        except OSError:
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return StoredObject(bucket, path, target.stat().st_size, content_type)

    def exists(self, bucket: Bucket, path: str) -> bool:
        return self._object_file(bucket, path).is_file()

    def delete(self, bucket: Bucket, path: str) -> None:
        target = self._object_file(bucket, path)
        meta = self._meta_file(bucket, path)
        for file in (target, meta):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                file.unlink()

    def list(self, bucket: Bucket, prefix: str = "") -> list[str]:
        """Paths starting with ``prefix`` (a plain string prefix, as in S3), sorted."""
        bucket = validate_bucket(bucket)
        prefix = validate_prefix(prefix)
        bucket_dir = self.root / bucket
        start_dir = bucket_dir / prefix.rpartition("/")[0] if "/" in prefix else bucket_dir
        start_dir = self._inside_root(start_dir, bucket, prefix or ".")
        if not start_dir.is_dir():
            return []
        found: list[str] = []
        for directory, _subdirs, files in os.walk(start_dir):
            for name in files:
                relative = (Path(directory) / name).relative_to(bucket_dir).as_posix()
                if name.startswith(TEMP_PREFIX) or not relative.startswith(prefix):
                    continue
                found.append(relative)
        return sorted(found)

    def signed_url(self, bucket: Bucket, path: str, expires_in: int | None = None) -> str:
        """``{public_base_url}/files/{bucket}/{path}?expires=<unix>&signature=<hmac>``."""
        bucket = validate_bucket(bucket)
        path = validate_path(path)
        expires = int(time.time()) + resolve_ttl(expires_in, self.default_ttl)
        query = urlencode(
            {"expires": expires, "signature": sign(self._signing_secret, bucket, path, expires)}
        )
        return f"{self.public_base_url}/files/{bucket}/{quote(path, safe='/')}?{query}"

    def public_url(self, bucket: Bucket, path: str) -> str:
        """Unsigned ``{public_base_url}/files/avatars/{path}``; private buckets raise."""
        bucket = require_public_bucket(bucket)
        path = validate_path(path)
        return f"{self.public_base_url}/files/{bucket}/{quote(path, safe='/')}"

    def verify(
        self,
        bucket: str,
        path: str,
        expires: str | int,
        signature: str,
        now: float | None = None,
    ) -> None:
        """Check a signed request against this store's secret (see ``verify_signed_request``)."""
        verify_signed_request(self._signing_secret, bucket, path, expires, signature, now=now)

    def describe(self) -> str:
        return f"local directory {self.root}"

    def ensure_buckets(self) -> list[str]:
        """Create the bucket directories that are missing; return the ones created."""
        created = []
        for bucket in BUCKETS:
            bucket_dir = self.root / bucket
            if not bucket_dir.is_dir():
                bucket_dir.mkdir(parents=True, exist_ok=True)
                created.append(bucket)
        return created
