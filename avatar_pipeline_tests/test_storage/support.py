"""Test helpers: the local store's test settings and an independent SigV4 presign checker.

moto 5.2.5 serves presigned GETs without checking their signature or expiry (it only
refuses *unsigned* reads of private objects). So that the S3 tests still prove something about
the URLs we hand out, :func:`check_presigned_get` re-derives the AWS Signature Version 4 query
signature from first principles (hashlib/hmac, not botocore) and checks the expiry window.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

LOCAL_SECRET = "test-signing-secret-0123456789"  # test-only
LOCAL_BASE_URL = "http://127.0.0.1:8000"


class PresignRejected(Exception):
    """What a real S3 would answer with 403 (expired or SignatureDoesNotMatch)."""


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def check_presigned_get(url: str, *, secret_access_key: str, now: datetime) -> None:
    """Accept ``url`` as AWS S3 would at time ``now``, or raise PresignRejected."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise PresignRejected(f"unexpected algorithm {params.get('X-Amz-Algorithm')!r}")
    _key_id, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    amz_date = params["X-Amz-Date"]
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if not (signed_at <= now < signed_at + timedelta(seconds=int(params["X-Amz-Expires"]))):
        raise PresignRejected("Request has expired")

    signed_headers = params["X-Amz-SignedHeaders"]
    if signed_headers != "host":
        raise PresignRejected(f"unexpected signed headers {signed_headers!r}")
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret_access_key}".encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        raise PresignRejected("SignatureDoesNotMatch")


def signed_at(url: str) -> datetime:
    """When a presigned URL was signed (its ``X-Amz-Date``)."""
    amz_date = dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"]
    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
