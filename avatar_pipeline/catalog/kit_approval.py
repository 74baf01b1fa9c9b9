"""What approving a kit needs, and the pending candidates a person's approval promotes.

Images whose required checks could not be measured (for example adherence without a text
tower) are stored non-canonical with ``review_state='pending'``: they wait for a person. When a
person approves the kit (``approve_kit``: CLI, API, ``approve_kit_job``, studio), each slot that
has no canonical image gets the newest pending candidate that failed no check; all of them are
promoted in one savepoint together with the status change (kit-atomic). Approval is refused,
changing nothing, while a required slot — both anchors, every expression and every pose —
would still be empty.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from avatar_pipeline.catalog.avatar_assets import canonical_assets, list_assets, slot_name, slot_of
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit
from avatar_pipeline.consistency.types import FAIL, status_of, verdicts_from_dict
from avatar_pipeline.domain.vocab import EXPRESSION_NAMES, POSE_NAMES, AssetType

PENDING = "pending"
ACCEPTED = "accepted"


def required_slots_for_approval() -> tuple[str, ...]:
    """Both anchors, every expression and every pose of the model sheet, by slot name."""
    return (
        AssetType.ANCHOR_PORTRAIT.value,
        AssetType.ANCHOR_FULLBODY.value,
        *(slot_name(AssetType.EXPRESSION.value, expression=e) for e in EXPRESSION_NAMES),
        *(slot_name(AssetType.POSE.value, pose=p) for p in POSE_NAMES),
    )


def failed_checks(asset: AvatarAsset) -> list[str]:
    """Names of the checks this candidate failed, from its stored consistency record."""
    record: dict[str, Any] = (asset.generation_metadata or {}).get("consistency") or {}
    verdicts = verdicts_from_dict(record)
    if status_of(verdicts) != FAIL:
        return []
    return [name for name, v in verdicts.items() if v.failed]


def pending_promotions(session: Session, kit: AvatarKit) -> dict[str, AvatarAsset]:
    """Slot -> the newest pending, not-failed candidate, for slots with no canonical image."""
    canonical = canonical_assets(session, kit.id)
    picks: dict[str, AvatarAsset] = {}
    for asset in list_assets(session, kit.id):  # oldest first: the newest wins
        slot = slot_of(asset)
        if asset.is_canonical or slot in canonical or asset.review_state != PENDING:
            continue
        if failed_checks(asset):
            continue
        picks[slot] = asset
    return picks


def missing_slots_for_approval(
    session: Session, kit: AvatarKit, picks: dict[str, AvatarAsset] | None = None
) -> list[str]:
    """Required slots that would still be empty after promoting ``picks`` (default: the kit's
    pending promotions), plus the primary anchor pointer when it would be unset."""
    picks = pending_promotions(session, kit) if picks is None else picks
    filled = set(canonical_assets(session, kit.id)) | set(picks)
    missing = [slot for slot in required_slots_for_approval() if slot not in filled]
    portrait = AssetType.ANCHOR_PORTRAIT.value
    if kit.primary_anchor_id is None and portrait not in picks:
        missing.append("primary anchor (primary_anchor_id)")
    return missing
