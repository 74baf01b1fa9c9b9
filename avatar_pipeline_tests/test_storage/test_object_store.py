"""The ObjectStore contract, run against both backends (local directory, S3 on moto)."""

from __future__ import annotations

import pytest

from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import (
    NotPublicError,
    ObjectNotFoundError,
    ObjectStore,
    StoredObject,
)
from avatar_pipeline.storage.keys import InvalidKeyError

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_put_get_round_trip_keeps_bytes_and_content_type(store: ObjectStore) -> None:
    path = keys.anchor_path("kit-a", "anchor_portrait", "a1")
    stored = store.put("avatars", path, PNG_BYTES, content_type="image/png")
    assert stored == StoredObject("avatars", path, len(PNG_BYTES), "image/png")
    assert store.get("avatars", path) == PNG_BYTES
    assert store.head("avatars", path) == stored

    # The content type is the one given, not guessed from the ``.png`` suffix.
    store.put("avatars", path, b"RIFF....WEBP", content_type="image/webp")
    assert store.get("avatars", path) == b"RIFF....WEBP"
    assert store.head("avatars", path).content_type == "image/webp"
    assert store.head("avatars", path).size_bytes == 12


def test_list_by_kit_prefix_returns_exactly_that_kits_objects(store: ObjectStore) -> None:
    kit_1 = [
        keys.anchor_path("kit1", "anchor_portrait", "a1"),
        keys.expression_path("kit1", "happy", "e1"),
        keys.pose_path("kit1", "sitting", "p1"),
    ]
    # "kit10" starts with the string "kit1": the trailing "/" of kit_prefix keeps it out.
    kit_10 = [keys.anchor_path("kit10", "anchor_portrait", "a2")]
    for path in kit_1 + kit_10:
        store.put("avatars", path, path.encode())
    store.put("scenes", keys.scene_path("kit1", "ep1", "s1"), b"scene")

    assert store.list("avatars", keys.kit_prefix("kit1")) == sorted(kit_1)
    assert store.list("avatars", keys.kit_prefix("kit10")) == kit_10
    assert store.list("avatars", "kit1/expressions/") == [kit_1[1]]
    assert store.list("avatars") == sorted(kit_1 + kit_10)
    assert store.list("scenes") == ["kit1/ep1/s1.png"]
    assert store.list("avatars", keys.kit_prefix("nobody")) == []


def test_delete_then_get_raises_not_found(store: ObjectStore) -> None:
    path = keys.scene_path("u1", "ep1", "s1")
    store.put("scenes", path, b"scene bytes")
    assert store.exists("scenes", path)
    assert not store.exists("avatars", path)

    store.delete("scenes", path)
    assert not store.exists("scenes", path)
    with pytest.raises(ObjectNotFoundError, match=r"u1/ep1/s1\.png"):
        store.get("scenes", path)
    with pytest.raises(ObjectNotFoundError):
        store.head("scenes", path)
    store.delete("scenes", path)  # deleting an absent object is fine
    assert store.list("scenes") == []


def test_not_found_is_also_a_key_error(store: ObjectStore) -> None:
    with pytest.raises(KeyError):
        store.get("avatars", "kit1/anchors/portrait_missing.png")


UNSAFE_PATHS = ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "", "..", "kit/../../etc/x"]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_paths_are_rejected_and_nothing_is_written(store: ObjectStore, path: str) -> None:
    operations = {
        "put": lambda: store.put("avatars", path, b"evil"),
        "get": lambda: store.get("avatars", path),
        "head": lambda: store.head("avatars", path),
        "exists": lambda: store.exists("avatars", path),
        "delete": lambda: store.delete("avatars", path),
        "signed_url": lambda: store.signed_url("avatars", path),
        "public_url": lambda: store.public_url("avatars", path),
    }
    for name, operation in operations.items():
        with pytest.raises(InvalidKeyError):
            operation()
            pytest.fail(f"{name}({path!r}) was accepted")
    assert store.list("avatars") == []
    assert store.list("scenes") == []


def test_unknown_buckets_are_rejected(store: ObjectStore) -> None:
    for bucket in ["other", "../avatars", "", "AVATARS"]:
        with pytest.raises(InvalidKeyError, match="unknown bucket"):
            store.put(bucket, "kit1/anchors/portrait_a1.png", b"x")  # type: ignore[arg-type]
        with pytest.raises(InvalidKeyError, match="unknown bucket"):
            store.list(bucket)  # type: ignore[arg-type]


def test_unsafe_list_prefixes_are_rejected(store: ObjectStore) -> None:
    for prefix in ["../", "/kit1/", "kit1//", "kit1/../", "kit1\\"]:
        with pytest.raises(InvalidKeyError):
            store.list("avatars", prefix)
            pytest.fail(f"list prefix {prefix!r} was accepted")


def test_public_url_only_for_the_public_avatars_bucket(store: ObjectStore) -> None:
    url = store.public_url("avatars", "kit1/anchors/portrait_a1.png")
    assert url.endswith("/kit1/anchors/portrait_a1.png")
    assert "ignature" not in url
    with pytest.raises(NotPublicError, match="private"):
        store.public_url("scenes", "u1/ep1/s1.png")


def test_signed_url_lifetime_must_be_between_one_second_and_a_week(store: ObjectStore) -> None:
    for expires_in in [0, -5, 7 * 24 * 3600 + 1]:
        with pytest.raises(ValueError, match="between 1 and"):
            store.signed_url("scenes", "u1/ep1/s1.png", expires_in=expires_in)
    assert store.signed_url("scenes", "u1/ep1/s1.png", expires_in=7 * 24 * 3600)


def test_ensure_buckets_is_idempotent(store: ObjectStore) -> None:
    store.ensure_buckets()
    assert store.ensure_buckets() == []
