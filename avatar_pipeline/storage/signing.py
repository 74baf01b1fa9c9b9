"""HMAC-signed, expiring URLs for the local object store, checked by the serving API.

A signature is HMAC-SHA256 over ``"{bucket}/{path}\\n{expires}"`` with the signing secret,
encoded urlsafe-base64 without padding. ``expires`` is a Unix timestamp in whole seconds.
The serving API calls :func:`verify_signed_request` for ``GET /files/{bucket}/{path}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Final

from avatar_pipeline.storage.base import InvalidSignatureError
from avatar_pipeline.storage.keys import validate_bucket, validate_path

MAX_TTL_SECONDS: Final[int] = 7 * 24 * 3600  # the same ceiling S3 puts on presigned URLs
# 32 bytes of SHA-256 are 43 characters of base64 without padding.
_SIGNATURE_FORMAT: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]{43}")


def resolve_ttl(expires_in: int | None, default_ttl: int) -> int:
    """The lifetime to sign for: ``expires_in`` or the default, within 1 s .. 7 days."""
    ttl = default_ttl if expires_in is None else expires_in
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(
            f"signed URL lifetime {ttl!r} must be a whole number of seconds "
            f"between 1 and {MAX_TTL_SECONDS} (7 days)"
        )
    return ttl


def _message(bucket: str, path: str, expires: int) -> bytes:
    return f"{bucket}/{path}\n{expires}".encode()


def sign(secret: str, bucket: str, path: str, expires: int) -> str:
    """The signature for reading ``bucket/path`` until the Unix time ``expires``."""
    if not secret:
        raise ValueError("the signing secret is empty; set AVATAR_SIGNING_SECRET")
    digest = hmac.new(secret.encode(), _message(bucket, path, int(expires)), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def _parse_expires(expires: str | int) -> int:
    if isinstance(expires, bool):
        raise InvalidSignatureError("'expires' must be a Unix timestamp", reason="malformed")
    if isinstance(expires, int):
        return expires
    if not isinstance(expires, str) or not expires.isascii() or not expires.isdigit():
        raise InvalidSignatureError(
            f"'expires' must be a Unix timestamp in whole seconds, got {expires!r}",
            reason="malformed",
        )
    return int(expires)


def _check_signature_format(signature: str) -> None:
    if not isinstance(signature, str) or not _SIGNATURE_FORMAT.fullmatch(signature):
        raise InvalidSignatureError(
            "'signature' is missing or is not 43 characters of urlsafe base64; "
            "request a new signed URL",
            reason="malformed",
        )


def verify_signed_request(
    secret: str,
    bucket: str,
    path: str,
    expires: str | int,
    signature: str,
    now: float | None = None,
) -> None:
    """Accept a signed read of ``bucket/path`` or raise InvalidSignatureError.

    ``reason`` on the error is ``"malformed"`` (unparseable ``expires``/``signature``),
    ``"bad_signature"`` (tampered bucket, path, expiry or signature) or ``"expired"``.
    The signature is checked before the expiry, so "expired" is only said of genuine URLs.
    An unsafe bucket or path raises ``keys.InvalidKeyError`` before any of that.
    """
    validate_bucket(bucket)
    validate_path(path)
    expires_at = _parse_expires(expires)
    _check_signature_format(signature)
    expected = sign(secret, bucket, path, expires_at)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise InvalidSignatureError(
            f"signature does not match {bucket}/{path}; the URL was altered or signed with "
            "another secret — request a new signed URL",
            reason="bad_signature",
        )
    current = time.time() if now is None else now
    if current >= expires_at:
        raise InvalidSignatureError(
            f"signed URL for {bucket}/{path} expired at Unix time {expires_at}; request a new one",
            reason="expired",
        )
