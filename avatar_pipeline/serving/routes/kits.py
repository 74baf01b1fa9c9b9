"""Avatar kit administration (admin only): CRUD, approval, anchors, generation requests."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, status

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import InvalidTransitionError
from avatar_pipeline.serving.deps import AdminUser, SessionDep
from avatar_pipeline.serving.schemas import (
    AnchorChoice,
    GenerationRequestCreate,
    GenerationRequestPublic,
    KitCreate,
    KitPublic,
    KitStatusName,
    KitUpdate,
)

router = APIRouter(prefix="/avatar-kits", tags=["avatar-kits"])


def _not_ready(
    session: SessionDep, kit_id: uuid.UUID, exc: InvalidTransitionError
) -> HTTPException:
    """409 whose detail names the required slots (both anchors, every expression and pose)
    that would still be empty after approval promoted the kit's pending candidates."""
    kit = repo.get_kit(session, kit_id)
    required = set(repo.required_slots_for_approval())
    missing = [s for s in repo.missing_slots_for_approval(session, kit) if s in required]
    return HTTPException(status.HTTP_409_CONFLICT, {"message": str(exc), "missing_slots": missing})


@router.post("", response_model=KitPublic, status_code=status.HTTP_201_CREATED)
def create_kit(session: SessionDep, admin: AdminUser, body: KitCreate) -> KitPublic:
    """Create a draft kit (the visual identity contract) for a character."""
    kit = repo.create_kit(session, created_by=admin.id, **body.model_dump())
    return KitPublic.model_validate(kit)


@router.get("", response_model=list[KitPublic])
def list_kits(
    session: SessionDep,
    _admin: AdminUser,
    status: KitStatusName | None = None,
    character_id: uuid.UUID | None = None,
) -> list[KitPublic]:
    """All kits, optionally of one status or one character."""
    kits = repo.list_kits(session, status=status, character_id=character_id)
    return [KitPublic.model_validate(k) for k in kits]


@router.get("/{kit_id}", response_model=KitPublic)
def get_kit(session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID) -> KitPublic:
    return KitPublic.model_validate(repo.get_kit(session, kit_id))


@router.patch("/{kit_id}", response_model=KitPublic)
def update_kit(
    session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID, body: KitUpdate
) -> KitPublic:
    """Change prompts, name, description, is_default or status (``active`` = approval rules)."""
    fields = body.model_dump(exclude_unset=True)
    for required in ("name", "appearance_prompt", "style_prompt", "status", "is_default"):
        if required in fields and fields[required] is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"{required} cannot be set to null"
            )
    try:
        kit = repo.update_kit(session, kit_id, **fields)
    except InvalidTransitionError as exc:
        raise _not_ready(session, kit_id, exc) from exc
    return KitPublic.model_validate(kit)


@router.delete("/{kit_id}", response_model=KitPublic)
def archive_kit(session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID) -> KitPublic:
    """Archive the kit: it stops being a default and any character's active kit."""
    return KitPublic.model_validate(repo.archive_kit(session, kit_id))


@router.post(
    "/{kit_id}/approve",
    response_model=KitPublic,
    responses={409: {"description": "Not ready: the detail lists the missing slots."}},
)
def approve_kit(session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID) -> KitPublic:
    """Explicit approval: draft -> active once the anchors are canonical."""
    try:
        kit = repo.approve_kit(session, kit_id)
    except InvalidTransitionError as exc:
        raise _not_ready(session, kit_id, exc) from exc
    return KitPublic.model_validate(kit)


@router.patch("/{kit_id}/primary-anchor", response_model=KitPublic)
def set_primary_anchor(
    session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID, body: AnchorChoice
) -> KitPublic:
    """Make one of the kit's ``anchor_portrait`` assets its primary anchor (and canonical)."""
    return KitPublic.model_validate(repo.set_primary_anchor(session, kit_id, body.asset_id))


@router.patch("/{kit_id}/secondary-anchor", response_model=KitPublic)
def set_secondary_anchor(
    session: SessionDep, _admin: AdminUser, kit_id: uuid.UUID, body: AnchorChoice
) -> KitPublic:
    """Make one of the kit's ``anchor_fullbody`` assets its secondary anchor (and canonical)."""
    return KitPublic.model_validate(repo.set_secondary_anchor(session, kit_id, body.asset_id))


def _request(
    session: SessionDep,
    admin: AdminUser,
    kit_id: uuid.UUID,
    scope: str,
    body: GenerationRequestCreate | None,
) -> GenerationRequestPublic:
    kit = repo.get_kit(session, kit_id)
    if kit.status == "archived":
        raise InvalidTransitionError(
            f"kit {kit.id} ({kit.name!r}) is archived; set its status back to 'draft' before "
            "requesting generation"
        )
    request = repo.request_generation(
        session,
        kit_id=kit_id,
        requested_by=admin.id,
        scope=scope,
        slots=body.slots if body is not None else None,
    )
    return GenerationRequestPublic.model_validate(request)


@router.post(
    "/{kit_id}/generate-anchors",
    response_model=GenerationRequestPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def generate_anchors(
    session: SessionDep,
    admin: AdminUser,
    kit_id: uuid.UUID,
    body: GenerationRequestCreate | None = None,
) -> GenerationRequestPublic:
    """Ask the pipeline to generate the anchors from the kit's prompts (a sensor picks it up)."""
    return _request(session, admin, kit_id, "anchors", body)


@router.post(
    "/{kit_id}/generate-expressions",
    response_model=GenerationRequestPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def generate_expressions(
    session: SessionDep,
    admin: AdminUser,
    kit_id: uuid.UUID,
    body: GenerationRequestCreate | None = None,
) -> GenerationRequestPublic:
    """Ask the pipeline to generate the expression set from the kit's primary anchor."""
    return _request(session, admin, kit_id, "expressions", body)
