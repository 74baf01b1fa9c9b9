"""Kit-character association (admin only): a character's kits and its active kit."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import InvalidTransitionError
from avatar_pipeline.serving.deps import AdminUser, SessionDep
from avatar_pipeline.serving.schemas import ActiveKitChoice, CharacterPublic, KitPublic

router = APIRouter(prefix="/characters", tags=["characters"])


@router.get("/{character_id}/avatar-kits", response_model=list[KitPublic])
def list_character_kits(
    session: SessionDep, _admin: AdminUser, character_id: uuid.UUID
) -> list[KitPublic]:
    """Every kit of the character (seasonal outfits, story progression...), oldest first."""
    character = repo.get_character(session, character_id)
    return [KitPublic.model_validate(k) for k in repo.list_kits(session, character_id=character.id)]


@router.patch("/{character_id}/active-kit", response_model=CharacterPublic)
def set_active_kit(
    session: SessionDep, _admin: AdminUser, character_id: uuid.UUID, body: ActiveKitChoice
) -> CharacterPublic:
    """Switch the character's visual identity to one of its own *approved* (``active``) kits;
    a draft (never approved) or archived kit is refused with 409."""
    if body.avatar_kit_id is not None:
        repo.get_character(session, character_id)  # 404 for an unknown character first
        kit = repo.get_kit(session, body.avatar_kit_id)
        if kit.status == "draft" and kit.character_id == character_id:
            raise InvalidTransitionError(
                f"kit {kit.id} ({kit.name!r}) is {kit.status!r}; only an approved ('active') "
                f"kit can be a character's active kit — approve it first "
                f"(POST /avatar-kits/{kit.id}/approve)"
            )
    character = repo.set_active_kit(session, character_id, body.avatar_kit_id)
    return CharacterPublic.model_validate(character)
