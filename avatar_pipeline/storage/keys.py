"""Object keys exactly as the spec's Storage Structure lays them out.

A *bucket* is ``avatars`` (public read, admin write) or ``scenes`` (private). A *path* is the
key inside the bucket, e.g. ``{kit_id}/anchors/portrait_{asset_id}.png``; the catalog stores
the two separately (``storage_bucket``, ``storage_path``).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from avatar_pipeline.domain.vocab import AssetType

Bucket = Literal["avatars", "scenes"]
BUCKETS: Final[tuple[Bucket, ...]] = ("avatars", "scenes")
PUBLIC_BUCKETS: Final[frozenset[str]] = frozenset({"avatars"})

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class InvalidKeyError(ValueError):
    """An object key is unsafe (traversal, absolute, empty segment) or malformed."""


def validate_bucket(bucket: str) -> Bucket:
    if bucket not in BUCKETS:
        raise InvalidKeyError(f"unknown bucket {bucket!r}; expected one of {BUCKETS}")
    return bucket  # type: ignore[return-value]


def validate_path(path: str) -> str:
    """Reject absolute paths, ``..``, empty segments, backslashes and odd characters."""
    if not path or not isinstance(path, str):
        raise InvalidKeyError("object path must be a non-empty string")
    if path.startswith("/") or "\\" in path or "\x00" in path:
        raise InvalidKeyError(f"object path {path!r} must be relative and use '/' separators")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(f"object path {path!r} has an empty, '.' or '..' segment")
        if not _SEGMENT.match(segment):
            raise InvalidKeyError(
                f"object path segment {segment!r} in {path!r} may use only letters, digits, "
                "'.', '_' and '-' and must start with a letter or digit"
            )
    return path


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a valid path that may end in ``/`` (e.g. ``kit_prefix``)."""
    if prefix == "":
        return prefix
    validate_path(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def _slot_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_-]{1,64}", name):
        raise InvalidKeyError(f"slot name {name!r} must be lower-case letters, digits, '_' or '-'")
    return name


def _id(value: str, what: str) -> str:
    """An id used as one key segment (kit, asset, user, episode, scene): no '/' inside."""
    if not isinstance(value, str) or not _SEGMENT.match(value):
        raise InvalidKeyError(
            f"{what} {value!r} must be one path segment: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (a UUID is fine)"
        )
    return value


def anchor_path(kit_id: str, asset_type: AssetType | str, asset_id: str) -> str:
    """``{kit_id}/anchors/portrait_{asset_id}.png`` or ``.../fullbody_{asset_id}.png``."""
    kind = {
        AssetType.ANCHOR_PORTRAIT: "portrait",
        AssetType.ANCHOR_FULLBODY: "fullbody",
    }.get(AssetType(asset_type))
    if kind is None:
        raise InvalidKeyError(f"{asset_type!r} is not an anchor type")
    kit_id, asset_id = _id(kit_id, "kit_id"), _id(asset_id, "asset_id")
    return validate_path(f"{kit_id}/anchors/{kind}_{asset_id}.png")


def expression_path(kit_id: str, expression: str, asset_id: str) -> str:
    kit_id, asset_id = _id(kit_id, "kit_id"), _id(asset_id, "asset_id")
    return validate_path(f"{kit_id}/expressions/{_slot_name(expression)}_{asset_id}.png")


def pose_path(kit_id: str, pose: str, asset_id: str) -> str:
    kit_id, asset_id = _id(kit_id, "kit_id"), _id(asset_id, "asset_id")
    return validate_path(f"{kit_id}/poses/{_slot_name(pose)}_{asset_id}.png")


def avatar_asset_path(
    kit_id: str, asset_type: AssetType | str, asset_id: str, slot: str | None = None
) -> str:
    """Path of any avatar asset: anchors by type, expressions/poses by their slot name."""
    asset_type = AssetType(asset_type)
    if asset_type in (AssetType.ANCHOR_PORTRAIT, AssetType.ANCHOR_FULLBODY):
        return anchor_path(kit_id, asset_type, asset_id)
    if slot is None:
        raise InvalidKeyError(f"{asset_type.value} assets need a slot name (expression or pose)")
    if asset_type is AssetType.EXPRESSION:
        return expression_path(kit_id, slot, asset_id)
    if asset_type is AssetType.POSE:
        return pose_path(kit_id, slot, asset_id)
    kit_id, asset_id = _id(kit_id, "kit_id"), _id(asset_id, "asset_id")
    return validate_path(f"{kit_id}/outfits/{_slot_name(slot)}_{asset_id}.png")


def kit_prefix(kit_id: str) -> str:
    return validate_path(_id(kit_id, "kit_id")) + "/"


def scene_path(user_id: str, episode_id: str, scene_id: str) -> str:
    """``{user_id}/{episode_id}/{scene_id}.png`` inside the ``scenes`` bucket."""
    user_id, episode_id = _id(user_id, "user_id"), _id(episode_id, "episode_id")
    return validate_path(f"{user_id}/{episode_id}/{_id(scene_id, 'scene_id')}.png")
