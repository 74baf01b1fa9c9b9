"""What only the S3 backend does, against moto's server over real HTTP on loopback."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from avatar_pipeline.storage.base import StorageError
from avatar_pipeline.storage.s3 import S3ObjectStore
from avatar_pipeline_tests.s3_fixtures import DUMMY_SECRET_ACCESS_KEY, make_s3_store
from avatar_pipeline_tests.test_storage.support import (
    PresignRejected,
    check_presigned_get,
    signed_at,
)

SCENE = "u1/ep1/s1.png"


def _http_get(url: str) -> tuple[int, bytes, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Type")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), None


def test_presigned_url_fetches_the_bytes_over_http(s3_store: S3ObjectStore) -> None:
    s3_store.put("scenes", SCENE, b"private scene", content_type="image/png")
    url = s3_store.signed_url("scenes", SCENE, expires_in=60)
    assert urlsplit(url).path == f"/{s3_store.bucket_names['scenes']}/{SCENE}"  # path-style
    assert _http_get(url) == (200, b"private scene", "image/png")


def test_private_scenes_refuse_unsigned_reads_and_public_avatars_allow_them(
    s3_store: S3ObjectStore, moto_s3_endpoint: str
) -> None:
    # moto does enforce anonymous access: no signature, no public-read policy -> 403.
    s3_store.put("scenes", SCENE, b"private scene")
    unsigned_scene = f"{moto_s3_endpoint}/{s3_store.bucket_names['scenes']}/{SCENE}"
    assert _http_get(unsigned_scene)[0] == 403

    avatar = "kit1/anchors/portrait_a1.png"
    s3_store.put("avatars", avatar, b"canonical portrait")
    assert _http_get(s3_store.public_url("avatars", avatar)) == (
        200,
        b"canonical portrait",
        "image/png",
    )


def test_presigned_url_expiry_and_signature_are_right(s3_store: S3ObjectStore) -> None:
    # moto 5.2.5 does NOT check X-Amz-Expires or X-Amz-Signature on presigned GETs (checked:
    # an expired URL, a URL with another key and a URL with a mangled signature all get 200).
    # So we check the URL itself, as S3 would, with an independent SigV4 implementation.
    url = s3_store.signed_url("scenes", SCENE, expires_in=1)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["1"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert len(query["X-Amz-Signature"][0]) == 64

    at = signed_at(url)
    check_presigned_get(url, secret_access_key=DUMMY_SECRET_ACCESS_KEY, now=at)
    with pytest.raises(PresignRejected, match="expired"):
        check_presigned_get(
            url, secret_access_key=DUMMY_SECRET_ACCESS_KEY, now=at + timedelta(seconds=1)
        )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("/s1.png?", "/s2.png?"),
        lambda url: url.replace("X-Amz-Expires=60", "X-Amz-Expires=604800"),
        lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
    ],
    ids=["other-key", "longer-expiry", "mangled-signature"],
)
def test_tampered_presigned_urls_do_not_verify(s3_store: S3ObjectStore, tamper: object) -> None:
    url = s3_store.signed_url("scenes", SCENE, expires_in=60)
    tampered = tamper(url)  # type: ignore[operator]
    assert tampered != url
    at = signed_at(url)
    check_presigned_get(url, secret_access_key=DUMMY_SECRET_ACCESS_KEY, now=at)
    with pytest.raises(PresignRejected, match="SignatureDoesNotMatch"):
        check_presigned_get(tampered, secret_access_key=DUMMY_SECRET_ACCESS_KEY, now=at)
    with pytest.raises(PresignRejected, match="SignatureDoesNotMatch"):
        check_presigned_get(url, secret_access_key="another-secret", now=at)


def test_list_pages_through_more_than_one_page(moto_s3_endpoint: str) -> None:
    store = make_s3_store(moto_s3_endpoint, list_page_size=2)
    paths = [f"kit1/expressions/e{n}_a.png" for n in range(5)]
    for path in reversed(paths):
        store.put("avatars", path, b"x")
    store.put("avatars", "kit2/expressions/e0_a.png", b"x")
    assert store.list("avatars", "kit1/") == paths


def test_missing_bucket_is_an_actionable_storage_error(moto_s3_endpoint: str) -> None:
    store = make_s3_store(moto_s3_endpoint, create_buckets=False)
    with pytest.raises(StorageError, match=r"NoSuchBucket.*ensure_buckets"):
        store.put("avatars", "kit1/anchors/portrait_a1.png", b"x")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        store.get("avatars", "kit1/anchors/portrait_a1.png")
    assert sorted(store.ensure_buckets()) == sorted(store.bucket_names.values())
    store.put("avatars", "kit1/anchors/portrait_a1.png", b"x")


def test_unreachable_endpoint_is_an_actionable_storage_error() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    store = make_s3_store(dead, create_buckets=False)
    with pytest.raises(StorageError, match="AVATAR_S3_ENDPOINT_URL"):
        store.get("avatars", "kit1/anchors/portrait_a1.png")


def test_buckets_in_another_region(moto_s3_endpoint: str) -> None:
    store = make_s3_store(moto_s3_endpoint, region="eu-west-1")
    store.put("scenes", SCENE, b"eu scene")
    assert store.get("scenes", SCENE) == b"eu scene"


def test_repr_and_describe_never_show_credentials(moto_s3_endpoint: str) -> None:
    store = make_s3_store(
        moto_s3_endpoint, access_key_id="AKIDLEAKCHECK", secret_access_key="SeCrEtLeAkChEcK"
    )
    names = store.bucket_names
    assert store.describe() == (
        f"s3 {moto_s3_endpoint} buckets avatars={names['avatars']}, scenes={names['scenes']}"
    )
    for text in (repr(store), store.describe(), str(vars(store))):
        assert "AKIDLEAKCHECK" not in text
        assert "SeCrEtLeAkChEcK" not in text


def test_bucket_names_must_cover_both_logical_buckets(moto_s3_endpoint: str) -> None:
    with pytest.raises(ValueError, match="bucket_names must map exactly"):
        make_s3_store(moto_s3_endpoint, bucket_names={"avatars": "only-avatars"})
    with pytest.raises(ValueError, match="or neither"):
        make_s3_store(moto_s3_endpoint, secret_access_key=None)
