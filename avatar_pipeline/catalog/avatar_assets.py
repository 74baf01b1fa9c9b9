"""Avatar assets: registering images of a kit, anchors, slots and canonical promotion.

A *slot* is the place an asset fills on the model sheet: ``anchor_portrait``,
``anchor_fullbody``, ``expression:<name>``, ``pose:<name>`` or ``outfit``. Each slot has at most
one canonical (active) asset; the canonical anchors are also the kit's primary/secondary anchor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import (
    check_choice,
    check_slot_name,
    clean_dict,
    guarded,
    require,
)
from avatar_pipeline.catalog.errors import (
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
)
from avatar_pipeline.catalog.models import (
    ASSET_TYPES,
    REVIEW_STATES,
    SOURCE_TYPES,
    AvatarAsset,
    AvatarKit,
)
from avatar_pipeline.domain.vocab import AssetType
from avatar_pipeline.storage.keys import validate_bucket, validate_path

KIT = "avatar kit"
ASSET = "avatar asset"
ASSET_FIELDS = frozenset({"emotion_tags", "expression", "pose", "is_active", "generation_metadata"})
ANCHOR_POINTERS = {
    AssetType.ANCHOR_PORTRAIT.value: "primary_anchor_id",
    AssetType.ANCHOR_FULLBODY.value: "secondary_anchor_id",
}


def _kit(session: Session, kit_id: uuid.UUID | str) -> AvatarKit:
    return require(session, AvatarKit, kit_id, KIT)


def slot_name(asset_type: str, expression: str | None = None, pose: str | None = None) -> str:
    if asset_type == AssetType.EXPRESSION:
        return f"expression:{expression}"
    if asset_type == AssetType.POSE:
        return f"pose:{pose}"
    return asset_type  # anchor_portrait, anchor_fullbody, outfit (one slot each)


def slot_of(asset: AvatarAsset) -> str:
    """'anchor_portrait', 'anchor_fullbody', 'expression:<name>', 'pose:<name>' or 'outfit'."""
    return slot_name(asset.asset_type, asset.expression, asset.pose)


def _check_slot_fields(asset_type: str, expression: str | None, pose: str | None) -> None:
    if asset_type == AssetType.EXPRESSION and not expression:
        raise ConstraintViolationError(
            "expression assets need an expression name (e.g. 'happy')",
            constraint="expression_required",
        )
    if asset_type == AssetType.POSE and not pose:
        raise ConstraintViolationError(
            "pose assets need a pose name (e.g. 'sitting')", constraint="pose_required"
        )
    if expression is not None:
        check_slot_name(expression, field="expression")
    if pose is not None:
        check_slot_name(pose, field="pose")


def _check_sizes(**sizes: int | None) -> None:
    for field, value in sizes.items():
        if value is not None and value < 0:
            raise ConstraintViolationError(
                f"{field} must not be negative, got {value}", constraint=f"{field}_positive"
            )


def register_asset(
    session: Session,
    *,
    kit_id: uuid.UUID,
    asset_type: str,
    storage_path: str,
    source_type: str,
    asset_id: uuid.UUID | None = None,
    storage_bucket: str = "avatars",
    expression: str | None = None,
    pose: str | None = None,
    emotion_tags: Iterable[str] | None = None,
    derived_from_id: uuid.UUID | None = None,
    generation_metadata: dict[str, Any] | None = None,
    mime_type: str = "image/png",
    width: int | None = None,
    height: int | None = None,
    file_size_bytes: int | None = None,
    is_canonical: bool = False,
    review_state: str | None = None,
) -> AvatarAsset:
    """Record an image already written to the store. ``is_canonical=True`` also promotes it
    (un-setting the slot's previous canonical asset and, for anchors, the kit's pointer);
    ``review_state='pending'`` stores it as a candidate that waits for a person."""
    if review_state is not None:
        check_choice(
            str(review_state),
            REVIEW_STATES,
            field="review_state",
            constraint="ck_avatar_assets_review_state",
        )
    check_choice(
        str(asset_type), ASSET_TYPES, field="asset_type", constraint="ck_avatar_assets_asset_type"
    )
    check_choice(
        str(source_type),
        SOURCE_TYPES,
        field="source_type",
        constraint="ck_avatar_assets_source_type",
    )
    _check_slot_fields(asset_type, expression, pose)
    _check_sizes(width=width, height=height, file_size_bytes=file_size_bytes)
    validate_bucket(storage_bucket)
    validate_path(storage_path)
    kit = _kit(session, kit_id)
    if derived_from_id is not None:
        parent = require(session, AvatarAsset, derived_from_id, ASSET)
        if parent.avatar_kit_id != kit.id:
            raise InvalidReferenceError(
                f"derived_from_id {parent.id} is an asset of kit {parent.avatar_kit_id}, not of "
                f"kit {kit.id}; an asset can only derive from an asset of its own kit"
            )
    asset = AvatarAsset(
        id=asset_id or uuid.uuid4(),
        avatar_kit_id=kit.id,
        asset_type=str(asset_type),
        expression=expression,
        pose=pose,
        emotion_tags=[str(tag) for tag in emotion_tags] if emotion_tags is not None else None,
        storage_bucket=storage_bucket,
        storage_path=storage_path,
        source_type=str(source_type),
        derived_from_id=derived_from_id,
        generation_metadata=clean_dict(generation_metadata),
        mime_type=mime_type,
        width=width,
        height=height,
        file_size_bytes=file_size_bytes,
        review_state=review_state,
    )
    with guarded(session, f"asset {asset.id} of kit {kit.id}"):
        session.add(asset)
    if is_canonical:
        promote_to_canonical(session, [asset.id])
    return asset


def get_asset(session: Session, asset_id: uuid.UUID | str) -> AvatarAsset:
    return require(session, AvatarAsset, asset_id, ASSET)


def list_assets(
    session: Session,
    kit_id: uuid.UUID | str,
    *,
    asset_type: str | None = None,
    canonical_only: bool = False,
    include_inactive: bool = False,
) -> list[AvatarAsset]:
    kit = _kit(session, kit_id)
    query = (
        select(AvatarAsset)
        .where(AvatarAsset.avatar_kit_id == kit.id)
        .order_by(AvatarAsset.created_at, AvatarAsset.id)
    )
    if asset_type is not None:
        check_choice(
            str(asset_type),
            ASSET_TYPES,
            field="asset_type",
            constraint="ck_avatar_assets_asset_type",
        )
        query = query.where(AvatarAsset.asset_type == str(asset_type))
    if canonical_only:
        query = query.where(AvatarAsset.is_canonical.is_(True))
    if not include_inactive:
        query = query.where(AvatarAsset.is_active.is_(True))
    return list(session.scalars(query))


def _deactivate(session: Session, asset: AvatarAsset) -> None:
    asset.is_active = False
    asset.is_canonical = False
    kit = session.get(AvatarKit, asset.avatar_kit_id)
    if kit is not None:
        for pointer in ANCHOR_POINTERS.values():
            if getattr(kit, pointer) == asset.id:
                setattr(kit, pointer, None)


def update_asset(session: Session, asset_id: uuid.UUID | str, **fields: Any) -> AvatarAsset:
    """Change emotion_tags, expression, pose, is_active or generation_metadata (replaced whole).

    A canonical asset moved to another slot becomes that slot's canonical asset; setting
    ``is_active=False`` is ``deactivate_asset``.
    """
    unknown = set(fields) - ASSET_FIELDS
    if unknown:
        raise ValueError(
            f"update_asset cannot change {sorted(unknown)}; allowed: {sorted(ASSET_FIELDS)}"
        )
    asset = get_asset(session, asset_id)
    _check_slot_fields(
        asset.asset_type, fields.get("expression", asset.expression), fields.get("pose", asset.pose)
    )
    old_slot = slot_of(asset)
    with guarded(session, f"asset {asset.id}"):
        if "emotion_tags" in fields:
            tags = fields["emotion_tags"]
            asset.emotion_tags = [str(tag) for tag in tags] if tags is not None else None
        for key in ("expression", "pose"):
            if key in fields:
                setattr(asset, key, fields[key])
        if "generation_metadata" in fields:
            asset.generation_metadata = clean_dict(fields["generation_metadata"])
        if fields.get("is_active") is False:
            _deactivate(session, asset)
        elif fields.get("is_active") is True:
            asset.is_active = True
    if asset.is_canonical and asset.is_active and slot_of(asset) != old_slot:
        promote_to_canonical(session, [asset.id])
    return asset


def deactivate_asset(session: Session, asset_id: uuid.UUID | str) -> AvatarAsset:
    """Soft delete: inactive, not canonical, and no longer the kit's primary/secondary anchor."""
    asset = get_asset(session, asset_id)
    with guarded(session, f"asset {asset.id}"):
        _deactivate(session, asset)
    return asset


def _anchor_for(
    session: Session, kit_id: uuid.UUID | str, asset_id: uuid.UUID | str, wanted: AssetType
) -> AvatarAsset:
    kit = _kit(session, kit_id)
    asset = get_asset(session, asset_id)
    if asset.avatar_kit_id != kit.id:
        raise InvalidReferenceError(
            f"asset {asset.id} belongs to kit {asset.avatar_kit_id}, not to kit {kit.id}; "
            "an anchor must be one of the kit's own assets"
        )
    if asset.asset_type != wanted:
        raise InvalidReferenceError(
            f"asset {asset.id} is a {asset.asset_type} asset; the "
            f"{'primary' if wanted is AssetType.ANCHOR_PORTRAIT else 'secondary'} anchor must be "
            f"an {wanted.value} asset"
        )
    if not asset.is_active:
        raise InvalidReferenceError(f"asset {asset.id} is deactivated; reactivate it first")
    return asset


def set_primary_anchor(
    session: Session, kit_id: uuid.UUID | str, asset_id: uuid.UUID | str
) -> AvatarKit:
    """Make an ``anchor_portrait`` asset of the kit its primary anchor (and canonical)."""
    asset = _anchor_for(session, kit_id, asset_id, AssetType.ANCHOR_PORTRAIT)
    promote_to_canonical(session, [asset.id])
    return _kit(session, kit_id)


def set_secondary_anchor(
    session: Session, kit_id: uuid.UUID | str, asset_id: uuid.UUID | str
) -> AvatarKit:
    """Make an ``anchor_fullbody`` asset of the kit its secondary anchor (and canonical)."""
    asset = _anchor_for(session, kit_id, asset_id, AssetType.ANCHOR_FULLBODY)
    promote_to_canonical(session, [asset.id])
    return _kit(session, kit_id)


def find_asset_by_fingerprint(
    session: Session, kit_id: uuid.UUID | str, fingerprint: str, *, include_inactive: bool = False
) -> AvatarAsset | None:
    """The newest asset of the kit whose ``generation_metadata['fingerprint']`` matches."""
    assets = list_assets(session, kit_id, include_inactive=include_inactive)
    matches = [a for a in assets if (a.generation_metadata or {}).get("fingerprint") == fingerprint]
    return matches[-1] if matches else None


def canonical_assets(session: Session, kit_id: uuid.UUID | str) -> dict[str, AvatarAsset]:
    """The kit's active canonical assets keyed by slot name (see ``slot_of``)."""
    return {slot_of(a): a for a in list_assets(session, kit_id, canonical_only=True)}


def promote_to_canonical(session: Session, asset_ids: list[uuid.UUID]) -> None:
    """Make each asset the canonical one of its slot; anchors also become the kit's pointers.

    All ids must be active assets of one kit, at most one per slot. Every id is checked before
    anything changes, and the changes run in one SAVEPOINT of the caller's transaction: on any
    error nothing changed. The caller commits.
    """
    if not asset_ids:
        return
    assets = [get_asset(session, asset_id) for asset_id in asset_ids]
    kit_ids = {a.avatar_kit_id for a in assets}
    if len(kit_ids) > 1:
        raise InvalidReferenceError(
            f"promote_to_canonical got assets of {len(kit_ids)} kits ({sorted(map(str, kit_ids))});"
            " promote one kit's assets at a time"
        )
    slots: dict[str, uuid.UUID] = {}
    for asset in assets:
        if not asset.is_active:
            raise InvalidReferenceError(
                f"asset {asset.id} is deactivated and cannot become canonical; reactivate it first"
            )
        slot = slot_of(asset)
        if slot in slots and slots[slot] != asset.id:
            raise ConflictError(
                f"assets {slots[slot]} and {asset.id} are both for slot {slot!r}; "
                "promote only one asset per slot"
            )
        slots[slot] = asset.id
    kit = _kit(session, assets[0].avatar_kit_id)
    siblings = list_assets(session, kit.id)
    with guarded(session, f"canonical promotion in kit {kit.id}"):
        for asset in assets:
            slot = slot_of(asset)
            for other in siblings:
                if other.id != asset.id and other.is_canonical and slot_of(other) == slot:
                    other.is_canonical = False
            asset.is_canonical = True
            pointer = ANCHOR_POINTERS.get(asset.asset_type)
            if pointer:
                setattr(kit, pointer, asset.id)
