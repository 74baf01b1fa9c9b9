"""Object keys have exactly the shape of the spec's Storage Structure."""

from __future__ import annotations

import uuid

import pytest

from avatar_pipeline.domain.vocab import AssetType
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectStore
from avatar_pipeline.storage.keys import InvalidKeyError


def test_avatar_keys_follow_the_storage_structure() -> None:
    kit, asset = str(uuid.uuid4()), str(uuid.uuid4())
    assert keys.anchor_path(kit, AssetType.ANCHOR_PORTRAIT, asset) == (
        f"{kit}/anchors/portrait_{asset}.png"
    )
    assert keys.anchor_path(kit, "anchor_fullbody", asset) == f"{kit}/anchors/fullbody_{asset}.png"
    assert keys.expression_path(kit, "happy", asset) == f"{kit}/expressions/happy_{asset}.png"
    assert keys.expression_path(kit, "shy", asset) == f"{kit}/expressions/shy_{asset}.png"
    assert keys.pose_path(kit, "sitting", asset) == f"{kit}/poses/sitting_{asset}.png"
    assert keys.pose_path(kit, "standing", asset) == f"{kit}/poses/standing_{asset}.png"
    assert keys.kit_prefix(kit) == f"{kit}/"


def test_scene_key_follows_the_storage_structure() -> None:
    user, episode, scene = (str(uuid.uuid4()) for _ in range(3))
    assert keys.scene_path(user, episode, scene) == f"{user}/{episode}/{scene}.png"


def test_avatar_asset_path_dispatches_by_asset_type() -> None:
    assert keys.avatar_asset_path("k1", AssetType.POSE, "a1", slot="waving") == (
        "k1/poses/waving_a1.png"
    )
    assert keys.avatar_asset_path("k1", AssetType.ANCHOR_PORTRAIT, "a1") == (
        "k1/anchors/portrait_a1.png"
    )
    with pytest.raises(InvalidKeyError, match="slot name"):
        keys.avatar_asset_path("k1", AssetType.EXPRESSION, "a1")


@pytest.mark.parametrize(
    "build",
    [
        lambda: keys.anchor_path("../etc", AssetType.ANCHOR_PORTRAIT, "a1"),
        lambda: keys.anchor_path("k1", AssetType.POSE, "a1"),
        lambda: keys.expression_path("k1", "../happy", "a1"),
        lambda: keys.expression_path("k1", "Happy Face", "a1"),
        lambda: keys.pose_path("k1", "sitting", "a/b"),
        lambda: keys.scene_path("/root", "e1", "s1"),
        lambda: keys.scene_path("u1", "..", "s1"),
        lambda: keys.kit_prefix(""),
        # An id must stay one segment, or the key would not have the spec's shape.
        lambda: keys.kit_prefix("kit/nested"),
        lambda: keys.anchor_path("k1/x", AssetType.ANCHOR_FULLBODY, "a1"),
        lambda: keys.scene_path("u1", "ep1", "s1/extra"),
        lambda: keys.avatar_asset_path("k1", AssetType.OUTFIT, "../a1", slot="casual"),
    ],
)
def test_key_builders_refuse_unsafe_parts(build: object) -> None:
    with pytest.raises(InvalidKeyError):
        build()  # type: ignore[operator]


def test_built_keys_round_trip_through_the_store(store: ObjectStore) -> None:
    kit = str(uuid.uuid4())
    built = [
        keys.anchor_path(kit, AssetType.ANCHOR_PORTRAIT, "a1"),
        keys.anchor_path(kit, AssetType.ANCHOR_FULLBODY, "a2"),
        keys.expression_path(kit, "neutral", "e1"),
        keys.pose_path(kit, "standing", "p1"),
    ]
    for number, path in enumerate(built):
        store.put("avatars", path, f"image {number}".encode())
    store.put("scenes", keys.scene_path("u1", "ep1", "s1"), b"scene")
    assert store.list("avatars", keys.kit_prefix(kit)) == sorted(built)
    assert store.list("scenes") == ["u1/ep1/s1.png"]
