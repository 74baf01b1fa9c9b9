"""Candidates of a kit's slots: takes, pending candidate sets, and what waits for a person.

A *take* is a generation of one slot with a new seed: the original is take 0 (no ``take`` in
``generation_metadata``), each new take of the slot stores ``generation_metadata["take"] = N``.
A *candidate set* is a group of rows generated together for one trigger (a prompt change or a
model upgrade on an approved kit); they carry ``generation_metadata["candidate_set"]``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.avatar_assets import list_assets, slot_of
from avatar_pipeline.catalog.avatar_kits import get_kit
from avatar_pipeline.catalog.models import AvatarAsset

TAKE = "take"
TAKE_TOKEN = "take_token"
CANDIDATE_SET = "candidate_set"
PENDING = "pending"
REJECTED = "rejected"
ACCEPTED = "accepted"


def take_of(asset: AvatarAsset) -> int:
    """The take number of an image: 0 for the original generation."""
    try:
        return int((asset.generation_metadata or {}).get(TAKE) or 0)
    except (TypeError, ValueError):
        return 0


def _slot_rows(session: Session, kit_id: uuid.UUID | str, slot: str) -> list[AvatarAsset]:
    kit = get_kit(session, kit_id)
    rows = session.scalars(
        select(AvatarAsset)
        .where(AvatarAsset.avatar_kit_id == kit.id)
        .order_by(AvatarAsset.created_at, AvatarAsset.id)
    )
    return [a for a in rows if slot_of(a) == slot]


def next_take(session: Session, kit_id: uuid.UUID | str, slot: str) -> int:
    """1 + the highest take stored for the slot (deactivated rows count: a seed is never reused)."""
    return 1 + max((take_of(a) for a in _slot_rows(session, kit_id, slot)), default=0)


def find_take(
    session: Session, kit_id: uuid.UUID | str, slot: str, token: str
) -> AvatarAsset | None:
    """The row an earlier attempt of the same take request (``token``) stored, if any."""
    if not token:
        return None
    for asset in reversed(_slot_rows(session, kit_id, slot)):
        if (asset.generation_metadata or {}).get(TAKE_TOKEN) == token:
            return asset
    return None


def take_for_request(session: Session, kit_id: uuid.UUID | str, slot: str, token: str) -> int:
    """The take number a request stands for: the one it already stored, else the next one.

    Re-running the same request (same ``token``) therefore asks for the same seed, which the
    image cache and the fingerprint check answer without paying again.
    """
    existing = find_take(session, kit_id, slot, token)
    return take_of(existing) if existing is not None else next_take(session, kit_id, slot)


@dataclass
class SlotCandidates:
    """One slot of the model sheet: its canonical image and the images next to it."""

    slot: str
    canonical: AvatarAsset | None = None
    pending: list[AvatarAsset] = field(default_factory=list)  # wait for a person
    others: list[AvatarAsset] = field(default_factory=list)  # superseded or rejected


def candidates_by_slot(session: Session, kit_id: uuid.UUID | str) -> dict[str, SlotCandidates]:
    """Every slot that has an active image: canonical, pending candidates (newest first), rest."""
    out: dict[str, SlotCandidates] = {}
    for asset in reversed(list_assets(session, kit_id)):
        slot = slot_of(asset)
        entry = out.setdefault(slot, SlotCandidates(slot))
        if asset.is_canonical:
            entry.canonical = asset
        elif asset.review_state == PENDING:
            entry.pending.append(asset)
        else:
            entry.others.append(asset)
    return out


def candidate_set_rows(
    session: Session, kit_id: uuid.UUID | str, candidate_set: str, *, pending_only: bool = True
) -> list[AvatarAsset]:
    rows = [
        a
        for a in list_assets(session, kit_id)
        if (a.generation_metadata or {}).get(CANDIDATE_SET) == candidate_set
    ]
    return [a for a in rows if a.review_state == PENDING] if pending_only else rows


def pending_candidate_sets(
    session: Session, kit_id: uuid.UUID | str
) -> dict[str, list[AvatarAsset]]:
    """Candidate set id -> its rows still waiting for a person (oldest set first)."""
    sets: dict[str, list[AvatarAsset]] = defaultdict(list)
    for asset in list_assets(session, kit_id):
        name = (asset.generation_metadata or {}).get(CANDIDATE_SET)
        if name and asset.review_state == PENDING and not asset.is_canonical:
            sets[str(name)].append(asset)
    return dict(sets)


def derived_from_anchor(
    session: Session, kit_id: uuid.UUID | str, anchor_id: uuid.UUID
) -> list[str]:
    """Slots whose canonical image was made from the given anchor image."""
    out = []
    for asset in list_assets(session, kit_id, canonical_only=True):
        refs = (asset.generation_metadata or {}).get("reference_asset_ids") or []
        if asset.derived_from_id == anchor_id or str(anchor_id) in map(str, refs):
            out.append(slot_of(asset))
    return out


__all__ = [
    "ACCEPTED",
    "CANDIDATE_SET",
    "PENDING",
    "REJECTED",
    "TAKE",
    "TAKE_TOKEN",
    "SlotCandidates",
    "candidate_set_rows",
    "candidates_by_slot",
    "derived_from_anchor",
    "find_take",
    "next_take",
    "pending_candidate_sets",
    "take_for_request",
    "take_of",
]
