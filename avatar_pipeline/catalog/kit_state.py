"""A short fingerprint of what a kit's report shows: status, prompts, and every image's
canonical/review/active flags. A report whose recorded fingerprint differs is stale."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit


def kit_state_fingerprints(
    session: Session, kit_ids: list[uuid.UUID] | None = None
) -> dict[str, str]:
    """Kit id -> fingerprint, for the given kits (default: every kit), in two queries."""
    kits_q = select(AvatarKit)
    assets_q = select(
        AvatarAsset.avatar_kit_id,
        AvatarAsset.id,
        AvatarAsset.is_canonical,
        AvatarAsset.is_active,
        AvatarAsset.review_state,
    )
    if kit_ids is not None:
        kits_q = kits_q.where(AvatarKit.id.in_(kit_ids))
        assets_q = assets_q.where(AvatarAsset.avatar_kit_id.in_(kit_ids))
    parts: dict[str, list[str]] = {}
    for kit in session.scalars(kits_q):
        parts[str(kit.id)] = [
            kit.status,
            kit.name,
            kit.appearance_prompt,
            kit.style_prompt,
            kit.negative_prompt or "",
            str(kit.primary_anchor_id),
            str(kit.secondary_anchor_id),
        ]
    rows = sorted(session.execute(assets_q), key=lambda r: (str(r[0]), str(r[1])))
    for kit_id, asset_id, canonical, active, review_state in rows:
        entry = parts.get(str(kit_id))
        if entry is not None:
            entry.append(f"{asset_id}:{int(bool(canonical))}{int(bool(active))}{review_state}")
    return {
        kit_id: hashlib.sha256("\x1f".join(items).encode()).hexdigest()[:16]
        for kit_id, items in parts.items()
    }


def kit_state_fingerprint(session: Session, kit_id: uuid.UUID | str) -> str:
    kid = kit_id if isinstance(kit_id, uuid.UUID) else uuid.UUID(str(kit_id))
    return kit_state_fingerprints(session, [kid]).get(str(kid), "")
