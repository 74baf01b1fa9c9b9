"""The object store on any S3-compatible endpoint (AWS S3, MinIO, Ceph, moto) via boto3.

The logical buckets ``avatars`` and ``scenes`` map to real bucket names. ``avatars`` is public
read: that is a bucket policy the operator sets (``ensure_buckets`` applies one only to a bucket
it creates itself). ``scenes`` stays private and is read through presigned URLs.

Credentials come from the constructor or the usual AWS environment/config chain; they are handed
to boto3 and never kept on this object, logged or shown in ``repr``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from avatar_pipeline.storage.base import (
    ObjectNotFoundError,
    ObjectStore,
    StorageError,
    StoredObject,
    require_public_bucket,
)
from avatar_pipeline.storage.keys import (
    BUCKETS,
    PUBLIC_BUCKETS,
    Bucket,
    validate_bucket,
    validate_path,
    validate_prefix,
)
from avatar_pipeline.storage.signing import resolve_ttl

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CLIENT_CONFIG = Config(
    s3={"addressing_style": "path"},
    signature_version="s3v4",
    retries={"max_attempts": 3, "mode": "standard"},
)


def public_read_policy(bucket_name: str) -> str:
    """A bucket policy letting anyone GET objects (what the spec's ``avatars/`` needs)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadCanonicalAvatarAssets",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket_name}/*",
                }
            ],
        }
    )


class S3ObjectStore(ObjectStore):
    """Objects in two S3 buckets; signed URLs are S3 presigned GETs."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        bucket_names: Mapping[str, str],
        access_key_id: str | None,
        secret_access_key: str | None,
        default_ttl: int = 900,
        create_buckets: bool = False,
        list_page_size: int = 1000,
    ) -> None:
        if set(bucket_names) != set(BUCKETS):
            raise ValueError(
                f"bucket_names must map exactly {list(BUCKETS)} to real bucket names, "
                f"got keys {sorted(bucket_names)}"
            )
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError(
                "set both AVATAR_S3_ACCESS_KEY_ID and AVATAR_S3_SECRET_ACCESS_KEY, or neither "
                "(to use the AWS environment/config chain)"
            )
        self.endpoint_url = endpoint_url
        self.region = region
        self.bucket_names: dict[str, str] = {b: bucket_names[b] for b in BUCKETS}
        self.default_ttl = resolve_ttl(None, default_ttl)
        if not 1 <= list_page_size <= 1000:
            raise ValueError(f"list_page_size {list_page_size} must be between 1 and 1000")
        self.list_page_size = list_page_size  # keys per ListObjectsV2 call
        # One client for the store's lifetime: boto3 clients are thread-safe and costly to build.
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=_CLIENT_CONFIG,
        )
        if create_buckets:
            self.ensure_buckets()

    def __repr__(self) -> str:
        return (
            f"S3ObjectStore(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"buckets={self.bucket_names!r})"
        )

    # -- helpers -----------------------------------------------------------------------------

    def _real(self, bucket: str) -> str:
        return self.bucket_names[validate_bucket(bucket)]

    def _where(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def _fail(self, action: str, target: str, exc: Exception) -> NoReturn:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "?")
            message = exc.response.get("Error", {}).get("Message", "")
            hint = {
                "NoSuchBucket": "create the bucket, or run the store's ensure_buckets()",
                "AccessDenied": "check the access key's permissions on this bucket",
                "InvalidAccessKeyId": "check AVATAR_S3_ACCESS_KEY_ID",
                "SignatureDoesNotMatch": "check AVATAR_S3_SECRET_ACCESS_KEY",
            }.get(code, "see the S3 error code above")
            detail = f"{code}: {message}; {hint}"
        else:
            detail = f"{exc}; check AVATAR_S3_ENDPOINT_URL and that the endpoint is reachable"
        raise StorageError(f"S3 {action} {target} at {self._where()} failed: {detail}") from exc

    @staticmethod
    def _is_not_found(exc: ClientError) -> bool:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error.get("Code") in _NOT_FOUND_CODES or status == 404

    # -- ObjectStore ---------------------------------------------------------------------------

    def put(
        self, bucket: Bucket, path: str, data: bytes, content_type: str = "image/png"
    ) -> StoredObject:
        real, path = self._real(bucket), validate_path(path)
        try:
            self._client.put_object(
                Bucket=real, Key=path, Body=bytes(data), ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            self._fail("put", f"{real}/{path}", exc)
        return StoredObject(bucket, path, len(data), content_type)

    def get(self, bucket: Bucket, path: str) -> bytes:
        real, path = self._real(bucket), validate_path(path)
        try:
            response = self._client.get_object(Bucket=real, Key=path)
            return response["Body"].read()
        except ClientError as exc:
            if self._is_not_found(exc) and exc.response["Error"].get("Code") != "NoSuchBucket":
                raise ObjectNotFoundError(f"no object at {bucket}/{path} ({real})") from exc
            self._fail("get", f"{real}/{path}", exc)
        except BotoCoreError as exc:
            self._fail("get", f"{real}/{path}", exc)

    def _head(self, real: str, path: str) -> dict[str, Any] | None:
        try:
            return self._client.head_object(Bucket=real, Key=path)
        except ClientError as exc:
            if self._is_not_found(exc):
                return None
            self._fail("head", f"{real}/{path}", exc)
        except BotoCoreError as exc:
            self._fail("head", f"{real}/{path}", exc)

    def head(self, bucket: Bucket, path: str) -> StoredObject:
        real, path = self._real(bucket), validate_path(path)
        response = self._head(real, path)
        if response is None:
            raise ObjectNotFoundError(f"no object at {bucket}/{path} ({real})")
        return StoredObject(
            bucket,
            path,
            int(response["ContentLength"]),
            response.get("ContentType", "application/octet-stream"),
        )

    def exists(self, bucket: Bucket, path: str) -> bool:
        real, path = self._real(bucket), validate_path(path)
        return self._head(real, path) is not None

    def delete(self, bucket: Bucket, path: str) -> None:
        real, path = self._real(bucket), validate_path(path)
        try:
            self._client.delete_object(Bucket=real, Key=path)
        except (ClientError, BotoCoreError) as exc:
            self._fail("delete", f"{real}/{path}", exc)

    def list(self, bucket: Bucket, prefix: str = "") -> list[str]:
        real, prefix = self._real(bucket), validate_prefix(prefix)
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=real, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
            ):
                found.extend(item["Key"] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            self._fail("list", f"{real}/{prefix}*", exc)
        return sorted(found)

    def signed_url(self, bucket: Bucket, path: str, expires_in: int | None = None) -> str:
        """A presigned GET (SigV4), valid for ``expires_in`` seconds (default: the store's)."""
        real, path = self._real(bucket), validate_path(path)
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": real, "Key": path},
            ExpiresIn=resolve_ttl(expires_in, self.default_ttl),
        )

    def public_url(self, bucket: Bucket, path: str) -> str:
        """Unsigned path-style URL of an ``avatars`` object (needs a public-read policy)."""
        real, path = self._real(require_public_bucket(bucket)), validate_path(path)
        return f"{self._client.meta.endpoint_url.rstrip('/')}/{real}/{quote(path, safe='/')}"

    def describe(self) -> str:
        buckets = ", ".join(f"{b}={self.bucket_names[b]}" for b in BUCKETS)
        return f"s3 {self._client.meta.endpoint_url} buckets {buckets}"

    def ensure_buckets(self) -> list[str]:
        """Create missing buckets; give a newly created ``avatars`` bucket a public-read policy.

        An existing bucket's policy is left alone: public read on ``avatars`` is the
        operator's bucket policy to set (see ``public_read_policy``).
        """
        created: list[str] = []
        for logical, real in self.bucket_names.items():
            try:
                if self._bucket_exists(real):
                    continue
                options: dict[str, Any] = {"Bucket": real}
                if self.region != "us-east-1":
                    options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                self._client.create_bucket(**options)
                if logical in PUBLIC_BUCKETS:
                    self._client.put_bucket_policy(Bucket=real, Policy=public_read_policy(real))
            except (ClientError, BotoCoreError) as exc:
                self._fail("create bucket", real, exc)
            created.append(real)
        return created

    def _bucket_exists(self, real: str) -> bool:
        try:
            self._client.head_bucket(Bucket=real)
        except ClientError as exc:
            if self._is_not_found(exc):
                return False
            raise
        return True
