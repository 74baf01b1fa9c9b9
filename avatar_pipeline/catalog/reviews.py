"""Review decisions (an addition to the spec): what a person decided about a kit's image
(``accepted`` / ``rejected``) or about the kit itself (``approved_kit`` / ``archived_kit``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import check_choice, guarded, require
from avatar_pipeline.catalog.errors import InvalidReferenceError
from avatar_pipeline.catalog.models import (
    REVIEW_DECISIONS,
    AvatarAsset,
    AvatarKit,
    ReviewDecision,
    User,
)


def record_decision(
    session: Session,
    *,
    kit_id: uuid.UUID | str,
    decision: str,
    asset_id: uuid.UUID | str | None = None,
    decided_by: uuid.UUID | str | None = None,
    note: str | None = None,
) -> ReviewDecision:
    """Append one decision; an image decision must name an asset of that kit."""
    check_choice(
        decision, REVIEW_DECISIONS, field="decision", constraint="ck_review_decisions_decision"
    )
    kit = require(session, AvatarKit, kit_id, "avatar kit")
    asset = require(session, AvatarAsset, asset_id, "avatar asset") if asset_id else None
    if asset is not None and asset.avatar_kit_id != kit.id:
        raise InvalidReferenceError(
            f"asset {asset.id} belongs to kit {asset.avatar_kit_id}, not to kit {kit.id}"
        )
    if decision in ("accepted", "rejected") and asset is None:
        raise InvalidReferenceError(f"a {decision!r} decision needs the asset it is about")
    user = require(session, User, decided_by, "user") if decided_by else None
    row = ReviewDecision(
        avatar_kit_id=kit.id,
        asset_id=asset.id if asset else None,
        decision=decision,
        decided_by=user.id if user else None,
        note=note,
    )
    with guarded(session, f"review decision on kit {kit.id}"):
        session.add(row)
    return row


def list_decisions(session: Session, kit_id: uuid.UUID | str | None = None) -> list[ReviewDecision]:
    """Decisions, oldest first (one kit's, or all)."""
    query = select(ReviewDecision).order_by(ReviewDecision.decided_at, ReviewDecision.id)
    if kit_id is not None:
        kit = require(session, AvatarKit, kit_id, "avatar kit")
        query = query.where(ReviewDecision.avatar_kit_id == kit.id)
    return list(session.scalars(query))
