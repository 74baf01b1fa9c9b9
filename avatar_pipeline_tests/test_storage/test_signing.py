"""Local signed URLs: HMAC-SHA256, expiring, refused when anything in them is changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from avatar_pipeline.storage.base import InvalidSignatureError
from avatar_pipeline.storage.keys import InvalidKeyError
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline.storage.signing import sign, verify_signed_request
from avatar_pipeline_tests.test_storage.support import LOCAL_BASE_URL, LOCAL_SECRET

PATH = "u1/ep1/s1.png"


def _parse(url: str) -> tuple[str, str, str, str]:
    """(bucket, path, expires, signature) as the serving API's route would see them."""
    parts = urlsplit(url)
    assert parts.path.startswith("/files/")
    bucket, _, path = parts.path.removeprefix("/files/").partition("/")
    query = parse_qs(parts.query)
    return bucket, path, query["expires"][0], query["signature"][0]


def test_signature_is_hmac_sha256_of_bucket_path_and_expiry() -> None:
    digest = hmac.new(b"s3cret", b"scenes/u1/ep1/s1.png\n1700000000", hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert sign("s3cret", "scenes", PATH, 1700000000) == expected
    assert "=" not in expected and len(expected) == 43


def test_signed_url_shape(local_store: LocalObjectStore) -> None:
    before = int(time.time())
    url = local_store.signed_url("scenes", PATH, expires_in=60)
    assert url.startswith(f"{LOCAL_BASE_URL}/files/scenes/{PATH}?expires=")
    bucket, path, expires, signature = _parse(url)
    assert (bucket, path) == ("scenes", PATH)
    assert before + 60 <= int(expires) <= int(time.time()) + 60
    assert signature == sign(LOCAL_SECRET, "scenes", PATH, int(expires))


def test_default_ttl_applies_when_no_lifetime_is_given(local_store: LocalObjectStore) -> None:
    _, _, expires, _ = _parse(local_store.signed_url("avatars", "kit1/anchors/portrait_a.png"))
    assert abs(int(expires) - (time.time() + local_store.default_ttl)) <= 2


def test_verify_passes_before_expiry_and_fails_after(local_store: LocalObjectStore) -> None:
    bucket, path, expires, signature = _parse(local_store.signed_url("scenes", PATH, 60))
    verify_signed_request(LOCAL_SECRET, bucket, path, expires, signature)
    verify_signed_request(LOCAL_SECRET, bucket, path, expires, signature, now=int(expires) - 1)
    local_store.verify(bucket, path, int(expires), signature)

    with pytest.raises(InvalidSignatureError, match="expired") as caught:
        verify_signed_request(LOCAL_SECRET, bucket, path, expires, signature, now=int(expires))
    assert caught.value.reason == "expired"
    with pytest.raises(InvalidSignatureError):
        local_store.verify(bucket, path, expires, signature, now=int(expires) + 3600)


def _tampered(bucket: str, path: str, expires: str, signature: str) -> dict[str, tuple]:
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {
        "path": (bucket, "u1/ep1/s2.png", expires, signature),
        "bucket": ("avatars", path, expires, signature),
        "expiry": (bucket, path, str(int(expires) + 86400), signature),
        "signature": (bucket, path, expires, flipped),
    }


@pytest.mark.parametrize("part", ["path", "bucket", "expiry", "signature"])
def test_tampered_urls_are_refused(local_store: LocalObjectStore, part: str) -> None:
    signed = _parse(local_store.signed_url("scenes", PATH, 60))
    with pytest.raises(InvalidSignatureError, match="does not match") as caught:
        verify_signed_request(LOCAL_SECRET, *_tampered(*signed)[part])
    assert caught.value.reason == "bad_signature"


def test_a_url_signed_with_another_secret_is_refused(local_store: LocalObjectStore) -> None:
    bucket, path, expires, signature = _parse(local_store.signed_url("scenes", PATH, 60))
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify_signed_request("a-different-secret", bucket, path, expires, signature)


def test_tampered_and_expired_is_reported_as_tampered(local_store: LocalObjectStore) -> None:
    bucket, _, expires, signature = _parse(local_store.signed_url("scenes", PATH, 60))
    with pytest.raises(InvalidSignatureError) as caught:
        verify_signed_request(
            LOCAL_SECRET, bucket, "u1/ep1/other.png", expires, signature, now=10**12
        )
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("expires", "signature"),
    [
        ("soon", "A" * 43),
        ("-5", "A" * 43),
        ("1e9", "A" * 43),
        ("", "A" * 43),
        ("1700000000", ""),
        ("1700000000", "A" * 42),
        ("1700000000", "A" * 42 + "="),
        ("1700000000", "A" * 42 + "+"),
    ],
)
def test_malformed_requests_are_refused_as_malformed(expires: str, signature: str) -> None:
    with pytest.raises(InvalidSignatureError) as caught:
        verify_signed_request(LOCAL_SECRET, "scenes", PATH, expires, signature, now=0)
    assert caught.value.reason == "malformed"


def test_unsafe_keys_in_a_signed_request_are_refused() -> None:
    expires = int(time.time()) + 60
    signature = sign(LOCAL_SECRET, "scenes", "../etc/passwd", expires)
    with pytest.raises(InvalidKeyError):
        verify_signed_request(LOCAL_SECRET, "scenes", "../etc/passwd", expires, signature)


def test_public_url_is_unsigned_for_avatars(local_store: LocalObjectStore) -> None:
    assert local_store.public_url("avatars", "kit1/poses/sitting_p1.png") == (
        f"{LOCAL_BASE_URL}/files/avatars/kit1/poses/sitting_p1.png"
    )
