"""build_object_store picks and configures the backend from Settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.factory import build_object_store
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline.storage.s3 import S3ObjectStore
from avatar_pipeline.storage.signing import verify_signed_request
from avatar_pipeline_tests.s3_fixtures import unique_bucket_names


def test_local_backend_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        var_dir=tmp_path,
        signing_secret=SecretStr("factory-secret"),
        public_base_url="https://avatars.example.test/",
        signed_url_ttl_seconds=120,
    )
    store = build_object_store(settings)
    assert isinstance(store, LocalObjectStore)
    assert store.describe() == f"local directory {(tmp_path / 'objects').resolve()}"

    store.put("scenes", "u1/ep1/s1.png", b"scene")
    assert (tmp_path / "objects/scenes/u1/ep1/s1.png").read_bytes() == b"scene"

    url = store.signed_url("scenes", "u1/ep1/s1.png")
    assert url.startswith("https://avatars.example.test/files/scenes/u1/ep1/s1.png?")
    query = parse_qs(urlsplit(url).query)
    verify_signed_request(
        "factory-secret", "scenes", "u1/ep1/s1.png", query["expires"][0], query["signature"][0]
    )
    assert store.default_ttl == 120


def test_s3_backend_from_settings(moto_s3_endpoint: str) -> None:
    names = unique_bucket_names()
    settings = Settings(
        _env_file=None,
        storage_backend="s3",
        s3_endpoint_url=moto_s3_endpoint,
        s3_avatars_bucket=names["avatars"],
        s3_scenes_bucket=names["scenes"],
        s3_access_key_id=SecretStr("testing"),
        s3_secret_access_key=SecretStr("testing"),
        signed_url_ttl_seconds=300,
    )
    store = build_object_store(settings, create_buckets=True)
    assert isinstance(store, S3ObjectStore)
    assert store.bucket_names == names
    store.put("avatars", "kit1/poses/sitting_p1.png", b"pose")
    assert store.get("avatars", "kit1/poses/sitting_p1.png") == b"pose"
    assert "X-Amz-Expires=300" in store.signed_url("avatars", "kit1/poses/sitting_p1.png")
