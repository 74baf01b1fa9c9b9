"""What a person decides about a kit's images, and when generation must wait for one.

Rules (the studio calls the functions; the generator asks ``hold_reason`` at promotion):

- A *new take* of a slot (a new seed) is stored next to the canonical image as a candidate with
  ``review_state='pending'``; it never replaces the canonical image by itself.
- An image a person chose (``review_state='accepted'``) stays canonical until a person changes
  it: a later run that re-creates or reuses another image of that slot does not promote it.
- An approved (``active``) kit never changes its canonical images without a person: any new
  image of it (prompt change, model upgrade, definition change, a request) is stored pending,
  grouped in a candidate set that a person approves or rejects as a whole.

Every decision function records one ``review_decisions`` row per image it changes. They take
the caller's session; the caller commits (one transaction: all or nothing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import candidates as cands
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.candidates import (
    ACCEPTED,
    REJECTED,
    SlotCandidates,
    candidate_set_rows,
    candidates_by_slot,
    pending_candidate_sets,
)
from avatar_pipeline.catalog.errors import (
    InvalidReferenceError,
    InvalidTransitionError,
    NotFoundError,
)
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit
from avatar_pipeline.catalog.reviews import record_decision
from avatar_pipeline.domain.vocab import AssetType

__all__ = [
    "ReviewOutcome",
    "SlotCandidates",
    "accept_candidate",
    "approve_candidate_set",
    "candidates_by_slot",
    "hold_reason",
    "pending_candidate_sets",
    "reject_candidate",
    "reject_candidate_set",
]

ANCHOR_TYPES = (AssetType.ANCHOR_PORTRAIT.value, AssetType.ANCHOR_FULLBODY.value)


def hold_reason(*, kit_status: str, take: int = 0, chosen_by_person: bool = False) -> str | None:
    """Why a new image of a slot must wait for a person instead of becoming canonical; None
    when the gate alone may promote it."""
    if take:
        return f"new take {take}: a candidate next to the canonical image, for a person to choose"
    if kit_status == "active":
        return "the kit is approved (active): new images wait for a person to approve them"
    if chosen_by_person:
        return "a person chose the current image of this slot; it stays until a person changes it"
    return None


@dataclass
class ReviewOutcome:
    """What a decision changed, in words the studio can show."""

    kit_id: str
    accepted: list[str] = field(default_factory=list)  # asset ids now canonical
    rejected: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # asset ids no longer canonical
    invalidates: list[str] = field(default_factory=list)  # slots made from a replaced anchor
    decisions: list[str] = field(default_factory=list)  # review_decisions ids
    message: str = ""


def _lock_kit(session: Session, kit_id: uuid.UUID | str) -> AvatarKit:
    """The kit row, locked for this transaction on PostgreSQL (two people choosing images of
    one kit at once take turns, so a slot never ends with two canonical images). On SQLite the
    caller's write transaction (``session_scope(write=True)``) holds the database write lock."""
    kit = repo.get_kit(session, kit_id)
    return session.scalars(
        select(AvatarKit)
        .where(AvatarKit.id == kit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _kit_asset(session: Session, kit_id: uuid.UUID | str, asset_id: uuid.UUID | str):
    kit = _lock_kit(session, kit_id)
    asset = repo.get_asset(session, asset_id)
    if asset.avatar_kit_id != kit.id:
        raise InvalidReferenceError(
            f"asset {asset.id} belongs to kit {asset.avatar_kit_id}, not to kit {kit.id} "
            f"({kit.name!r}); review it on its own kit's page"
        )
    return kit, asset


def _writable(kit: AvatarKit) -> None:
    if kit.status == "archived":
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) is archived; set it back to draft before reviewing"
        )


def _promote(
    session: Session, kit: AvatarKit, assets: list[AvatarAsset], outcome: ReviewOutcome
) -> None:
    """Make ``assets`` canonical (one per slot) as a person's choice; note what they replace."""
    for asset in assets:
        if not asset.is_active:
            raise InvalidTransitionError(
                f"asset {asset.id} is deactivated; reactivate it before choosing it"
            )
    before = repo.canonical_assets(session, kit.id)
    repo.promote_to_canonical(session, [a.id for a in assets])
    for asset in assets:
        slot = repo.slot_of(asset)
        old = before.get(slot)
        asset.review_state = ACCEPTED
        outcome.accepted.append(str(asset.id))
        if old is not None and old.id != asset.id:
            if old.review_state == ACCEPTED:
                old.review_state = None  # superseded: nothing pending about it
            outcome.replaced.append(str(old.id))
            if asset.asset_type in ANCHOR_TYPES:
                chosen = {repo.slot_of(a) for a in assets}
                outcome.invalidates += [
                    s
                    for s in cands.derived_from_anchor(session, kit.id, old.id)
                    if s not in chosen and s not in outcome.invalidates
                ]
    session.flush()


def _invalidation_note(outcome: ReviewOutcome) -> str:
    if not outcome.invalidates:
        return ""
    return (
        f" The anchor changed: {', '.join(outcome.invalidates)} were made from the old anchor; "
        "request a new take of them (or keep them if they still match)."
    )


def _record(
    session: Session,
    kit: AvatarKit,
    decision: str,
    assets: list[AvatarAsset],
    outcome: ReviewOutcome,
    *,
    decided_by: uuid.UUID | str | None,
    note: str | None,
) -> None:
    """One review_decisions row per image a person decided on, listed in the outcome."""
    for asset in assets:
        row = record_decision(
            session,
            kit_id=kit.id,
            decision=decision,
            asset_id=asset.id,
            decided_by=decided_by,
            note=note,
        )
        outcome.decisions.append(str(row.id))


def accept_candidate(
    session: Session,
    kit_id: uuid.UUID | str,
    asset_id: uuid.UUID | str,
    *,
    decided_by: uuid.UUID | str | None = None,
    note: str | None = None,
) -> ReviewOutcome:
    """A person chooses this image for its slot: it becomes the slot's one canonical image
    (and the kit's primary/secondary anchor for an anchor slot), marked ``accepted``."""
    kit, asset = _kit_asset(session, kit_id, asset_id)
    _writable(kit)
    outcome = ReviewOutcome(str(kit.id))
    _promote(session, kit, [asset], outcome)
    _record(session, kit, ACCEPTED, [asset], outcome, decided_by=decided_by, note=note)
    slot = repo.slot_of(asset)
    outcome.message = f"{slot}: asset {asset.id} is now canonical." + _invalidation_note(outcome)
    return outcome


def reject_candidate(
    session: Session,
    kit_id: uuid.UUID | str,
    asset_id: uuid.UUID | str,
    *,
    decided_by: uuid.UUID | str | None = None,
    note: str | None = None,
) -> ReviewOutcome:
    """A person rejects a candidate: it stays stored (history) but no longer waits."""
    kit, asset = _kit_asset(session, kit_id, asset_id)
    _writable(kit)
    if asset.is_canonical:
        raise InvalidTransitionError(
            f"asset {asset.id} is the canonical image of {repo.slot_of(asset)}; choose another "
            "candidate for the slot first (accept_candidate), then reject this one"
        )
    asset.review_state = REJECTED
    session.flush()
    outcome = ReviewOutcome(
        str(kit.id),
        rejected=[str(asset.id)],
        message=f"{repo.slot_of(asset)}: asset {asset.id} rejected.",
    )
    _record(session, kit, REJECTED, [asset], outcome, decided_by=decided_by, note=note)
    return outcome


def _set_rows(session: Session, kit: AvatarKit, candidate_set: str) -> list[AvatarAsset]:
    rows = candidate_set_rows(session, kit.id, candidate_set)
    if not rows:
        waiting = sorted(pending_candidate_sets(session, kit.id))
        raise NotFoundError(
            "pending candidate set",
            candidate_set,
            f"kit {kit.id} ({kit.name!r}) has "
            + (f"these pending sets: {', '.join(waiting)}" if waiting else "no pending set"),
        )
    return rows


def approve_candidate_set(
    session: Session,
    kit_id: uuid.UUID | str,
    candidate_set: str,
    *,
    decided_by: uuid.UUID | str | None = None,
    note: str | None = None,
) -> ReviewOutcome:
    """A person approves a candidate set: all of its images become canonical at once."""
    kit = _lock_kit(session, kit_id)
    _writable(kit)
    rows = _set_rows(session, kit, candidate_set)
    newest: dict[str, AvatarAsset] = {}
    for asset in rows:  # oldest first: the newest row of a slot wins
        newest[repo.slot_of(asset)] = asset
    chosen = list(newest.values())
    outcome = ReviewOutcome(str(kit.id))
    _promote(session, kit, chosen, outcome)
    text = note or f"candidate set {candidate_set}"
    _record(session, kit, ACCEPTED, chosen, outcome, decided_by=decided_by, note=text)
    for asset in rows:
        if asset not in chosen:  # an older duplicate of a slot in the same set
            asset.review_state = None
    outcome.message = (
        f"candidate set {candidate_set}: {len(chosen)} images are now canonical."
        + _invalidation_note(outcome)
    )
    return outcome


def reject_candidate_set(
    session: Session,
    kit_id: uuid.UUID | str,
    candidate_set: str,
    *,
    decided_by: uuid.UUID | str | None = None,
    note: str | None = None,
) -> ReviewOutcome:
    """A person rejects a candidate set: the canonical images stay as they are."""
    kit = _lock_kit(session, kit_id)
    _writable(kit)
    rows = _set_rows(session, kit, candidate_set)
    outcome = ReviewOutcome(str(kit.id))
    text = note or f"candidate set {candidate_set}"
    for asset in rows:
        asset.review_state = REJECTED
        outcome.rejected.append(str(asset.id))
    session.flush()
    _record(session, kit, REJECTED, rows, outcome, decided_by=decided_by, note=text)
    outcome.message = f"candidate set {candidate_set}: {len(rows)} images rejected."
    return outcome
