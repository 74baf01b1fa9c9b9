"""Avatar kits: the visual identity contract (prompts, anchors, status) and its lifecycle.

Status: ``draft`` -> ``active`` (``approve_kit``: every required slot is canonical, or has a
pending candidate that failed no check, which approval promotes; the primary anchor is set)
-> ``archived`` (``archive_kit``, the API's DELETE). An archived kit is neither a character's
default nor its active kit; setting it back to ``draft`` revives it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import as_uuid, check_choice, check_text, guarded, require
from avatar_pipeline.catalog.avatar_assets import (
    KIT,
    canonical_assets,
    promote_to_canonical,
)
from avatar_pipeline.catalog.errors import (
    ConstraintViolationError,
    InvalidReferenceError,
    InvalidTransitionError,
)
from avatar_pipeline.catalog.kit_approval import (
    ACCEPTED,
    missing_slots_for_approval,
    pending_promotions,
)
from avatar_pipeline.catalog.models import KIT_STATUSES, AvatarAsset, AvatarKit, Character
from avatar_pipeline.catalog.people import get_character, get_user
from avatar_pipeline.domain.prompts import KitPrompts
from avatar_pipeline.domain.vocab import AssetType

KIT_FIELDS = frozenset(
    {
        "name",
        "description",
        "appearance_prompt",
        "style_prompt",
        "negative_prompt",
        "status",
        "is_default",
    }
)


def kit_prompts(kit: AvatarKit) -> KitPrompts:
    """The kit's visual contract text as the domain's ``KitPrompts``."""
    return KitPrompts(kit.appearance_prompt, kit.style_prompt, kit.negative_prompt)


def _default_conflict(session: Session, character_id: uuid.UUID | None, name: str) -> str:
    existing = session.scalars(
        select(AvatarKit).where(
            AvatarKit.character_id == character_id, AvatarKit.is_default.is_(True)
        )
    ).first()
    held_by = f"kit {existing.id} ({existing.name!r})" if existing else "another kit"
    return (
        f"character {character_id} already has a default kit, {held_by}; set is_default=False "
        f"on it first, or save kit {name!r} with is_default=False"
    )


def create_kit(
    session: Session,
    *,
    name: str,
    appearance_prompt: str,
    style_prompt: str,
    negative_prompt: str | None = None,
    character_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
    description: str | None = None,
    is_default: bool = False,
    status: str = "draft",
    kit_id: uuid.UUID | None = None,
) -> AvatarKit:
    """Create a kit; raises InvalidPromptError, NotFoundError, ConflictError (second default).

    ``kit_id`` lets an importer keep a stable id (seeds derive from it, so a kit re-created
    with the same id and prompts reproduces the same images)."""
    name = check_text(name, field="name")
    prompts = KitPrompts(appearance_prompt, style_prompt, negative_prompt).validate()
    check_choice(status, KIT_STATUSES, field="status", constraint="ck_avatar_kits_status")
    if status == "active":
        raise InvalidTransitionError(
            f"kit {name!r} cannot start as 'active': it has no canonical anchors yet; create it "
            "as 'draft', add and promote its anchors, then approve_kit()"
        )
    if character_id is not None:
        character_id = get_character(session, character_id).id
    elif is_default:
        raise ConstraintViolationError(
            f"kit {name!r} cannot be a default kit without a character_id",
            constraint="default_needs_character",
        )
    if created_by is not None:
        created_by = get_user(session, created_by).id
    kit = AvatarKit(
        **({"id": kit_id} if kit_id is not None else {}),
        name=name,
        description=description,
        appearance_prompt=prompts.appearance_prompt,
        style_prompt=prompts.style_prompt,
        negative_prompt=prompts.negative_prompt,
        character_id=character_id,
        created_by=created_by,
        is_default=is_default,
        status=status,
    )
    conflicts = {"idx_avatar_kits_default": lambda: _default_conflict(session, character_id, name)}
    with guarded(session, f"kit {name!r}", conflicts):
        session.add(kit)
    return kit


def get_kit(session: Session, kit_id: uuid.UUID | str) -> AvatarKit:
    return require(session, AvatarKit, kit_id, KIT)


def list_kits(
    session: Session, *, status: str | None = None, character_id: uuid.UUID | None = None
) -> list[AvatarKit]:
    query = select(AvatarKit).order_by(AvatarKit.created_at, AvatarKit.id)
    if status is not None:
        check_choice(status, KIT_STATUSES, field="status", constraint="ck_avatar_kits_status")
        query = query.where(AvatarKit.status == status)
    if character_id is not None:
        query = query.where(AvatarKit.character_id == as_uuid(character_id, "character"))
    return list(session.scalars(query))


def update_kit(session: Session, kit_id: uuid.UUID | str, **fields: Any) -> AvatarKit:
    """Change prompts, name, description, is_default or status.

    ``status='active'`` applies ``approve_kit``'s rules, ``'archived'`` is ``archive_kit``.
    Unknown fields raise ValueError.
    """
    unknown = set(fields) - KIT_FIELDS
    if unknown:
        raise ValueError(
            f"update_kit cannot change {sorted(unknown)}; allowed: {sorted(KIT_FIELDS)}"
        )
    kit = get_kit(session, kit_id)
    status = fields.pop("status", None)
    if status is not None:
        check_choice(status, KIT_STATUSES, field="status", constraint="ck_avatar_kits_status")
    if "name" in fields:
        fields["name"] = check_text(fields["name"], field="name")
    prompt_fields = {"appearance_prompt", "style_prompt", "negative_prompt"} & set(fields)
    if prompt_fields:
        current = kit_prompts(kit)
        KitPrompts(
            fields.get("appearance_prompt", current.appearance_prompt),
            fields.get("style_prompt", current.style_prompt),
            fields.get("negative_prompt", current.negative_prompt),
        ).validate()
    if fields.get("is_default") and kit.character_id is None:
        raise ConstraintViolationError(
            f"kit {kit.id} has no character, so it cannot be a default kit",
            constraint="default_needs_character",
        )
    if status == "active" and kit.status != "active":
        _require_approvable(session, kit, pending_promotions(session, kit))
    conflicts = {
        "idx_avatar_kits_default": lambda: _default_conflict(session, kit.character_id, kit.name)
    }
    with guarded(session, f"kit {kit.id}", conflicts):
        for key, value in fields.items():
            setattr(kit, key, value)
        if status == "archived":
            _archive(session, kit)
        elif status == "active" and kit.status != "active":
            _approve(session, kit)
        elif status is not None:
            kit.status = status
    return kit


def _archive(session: Session, kit: AvatarKit) -> None:
    kit.status = "archived"
    kit.is_default = False
    for character in session.scalars(
        select(Character).where(Character.active_avatar_kit_id == kit.id)
    ):
        character.active_avatar_kit_id = None


def archive_kit(session: Session, kit_id: uuid.UUID | str) -> AvatarKit:
    """Archive (the API's DELETE): the kit stops being default and any character's active kit."""
    kit = get_kit(session, kit_id)
    with guarded(session, f"kit {kit.id}"):
        _archive(session, kit)
    return kit


def set_active_kit(
    session: Session, character_id: uuid.UUID | str, kit_id: uuid.UUID | str | None
) -> Character:
    """Point the character at one of its own, non-archived kits (None: no kit, T2I fallback)."""
    character = get_character(session, character_id)
    if kit_id is None:
        with guarded(session, f"character {character.id}"):
            character.active_avatar_kit_id = None
        return character
    kit = get_kit(session, kit_id)
    if kit.character_id != character.id:
        owner = f"character {kit.character_id}" if kit.character_id else "no character"
        raise InvalidReferenceError(
            f"kit {kit.id} ({kit.name!r}) belongs to {owner}, not to character {character.id} "
            f"({character.name!r}); pick one of this character's kits"
        )
    if kit.status == "archived":
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) is archived and cannot be a character's active kit; "
            "set its status back to 'draft' first"
        )
    with guarded(session, f"character {character.id}"):
        character.active_avatar_kit_id = kit.id
    return character


def _missing_for_approval(
    session: Session, kit: AvatarKit, picks: dict[str, AvatarAsset] | None = None
) -> list[str]:
    missing = missing_slots_for_approval(session, kit, picks)
    canonical = canonical_assets(session, kit.id)
    portrait = canonical.get(AssetType.ANCHOR_PORTRAIT.value)
    if portrait and kit.primary_anchor_id is not None and portrait.id != kit.primary_anchor_id:
        missing.append("primary anchor (primary_anchor_id)")
    return [m if m.startswith("primary anchor") else f"canonical {m}" for m in missing]


def _require_approvable(
    session: Session, kit: AvatarKit, picks: dict[str, AvatarAsset] | None = None
) -> None:
    if kit.status == "archived":
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) is archived; set its status to 'draft' before approving"
        )
    missing = _missing_for_approval(session, kit, picks)
    if missing:
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) cannot be approved: missing {', '.join(missing)}; "
            "generate or upload them (a pending candidate that failed no check counts: "
            "approval promotes it)"
        )


def _approve(session: Session, kit: AvatarKit) -> list[AvatarAsset]:
    """Check, then promote the kit's pending candidates of empty slots and set it active, all
    in one savepoint; returns the promoted candidates. Nothing changes when it raises."""
    picks = pending_promotions(session, kit)
    _require_approvable(session, kit, picks)
    promoted = list(picks.values())
    with guarded(session, f"kit {kit.id}"):
        promote_to_canonical(session, [a.id for a in promoted])
        for asset in promoted:
            asset.review_state = ACCEPTED  # a person chose it, by approving the kit
        kit.status = "active"
    return promoted


def approve_kit(session: Session, kit_id: uuid.UUID | str) -> AvatarKit:
    """draft -> active, by a person. The kit's pending candidates (stored for review, e.g. with
    a check that could not be measured) that failed no check become canonical for slots that
    have none, in the same savepoint; refused, changing nothing, while a required slot (both
    anchors, every expression and pose) would still be empty (``catalog.kit_approval``)."""
    kit = get_kit(session, kit_id)
    if kit.status == "active":
        return kit
    _approve(session, kit)
    return kit


def kit_total_cost(session: Session, kit_id: uuid.UUID | str) -> float:
    """Sum of ``generation_metadata['cost_usd']`` over all the kit's assets (also inactive)."""
    kit = get_kit(session, kit_id)
    costs = session.scalars(
        select(AvatarAsset.generation_metadata).where(AvatarAsset.avatar_kit_id == kit.id)
    )
    return float(sum(float((meta or {}).get("cost_usd") or 0.0) for meta in costs))
