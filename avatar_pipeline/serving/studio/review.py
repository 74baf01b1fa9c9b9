"""Studio review actions: a new take of a slot, use / reject a candidate, candidate sets.

The decisions themselves are ``generation.review`` (one ``review_decisions`` row per image);
a new take is a generation request for one slot with ``new_take`` set, which the pipeline
turns into a candidate next to the canonical image (never canonical by itself).
"""

from __future__ import annotations

import inspect
import uuid
from urllib.parse import quote_plus

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import (
    CatalogError,
    ConflictError,
    ConstraintViolationError,
    InvalidTransitionError,
)
from avatar_pipeline.catalog.models import KitGenerationRequest
from avatar_pipeline.domain.vocab import AssetType
from avatar_pipeline.generation import review
from avatar_pipeline.generation.slots import slot_named
from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.studio.auth import CsrfChecked
from avatar_pipeline.serving.studio.kits import kit_url, redirect, refused
from avatar_pipeline.serving.studio.pages import StudioError

router = APIRouter(prefix="/studio", include_in_schema=False)

SCOPE_OF = {
    AssetType.ANCHOR_PORTRAIT: "anchors",
    AssetType.ANCHOR_FULLBODY: "anchors",
    AssetType.EXPRESSION: "expressions",
    AssetType.POSE: "poses",
}


def request_new_take(
    session, kit_id: uuid.UUID, slot: str, requested_by: uuid.UUID | None
) -> KitGenerationRequest:
    """A generation request for a new take of one slot. A second request for the same slot
    while one is still on its way is refused, so a double click pays once."""
    kit = repo.get_kit(session, kit_id)
    if kit.status == "archived":
        raise InvalidTransitionError(f"kit {kit.name!r} is archived; it cannot get new takes")
    try:
        definition = slot_named(slot)
    except ValueError as exc:
        raise ConstraintViolationError(str(exc), constraint="slot_name") from None
    waiting = session.scalars(
        select(KitGenerationRequest).where(
            KitGenerationRequest.avatar_kit_id == kit.id,
            KitGenerationRequest.new_take.is_(True),
            KitGenerationRequest.status.in_(("pending", "picked")),
        )
    )
    if any(slot in (r.slots or []) for r in waiting):
        raise ConflictError(
            f"a new take of {slot} is already on its way; wait for it to finish (the page shows "
            "its progress) before asking for another"
        )
    kwargs = {}
    if "new_take" in inspect.signature(repo.request_generation).parameters:
        kwargs["new_take"] = True
    request = repo.request_generation(
        session,
        kit_id=kit.id,
        requested_by=requested_by,
        scope=SCOPE_OF[definition.asset_type],
        slots=[definition.name],
        **kwargs,
    )
    request.new_take = True
    session.flush()
    return request


@router.post("/kits/{kit_id}/slots/{slot}/new-take")
def new_take(services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID, slot: str) -> Response:
    try:
        with session_scope(services.session_factory, write=True) as session:
            request = request_new_take(session, kit_id, slot, admin.user.id)
            request_id = str(request.id)
    except CatalogError as exc:
        raise refused(exc) from None
    return redirect(kit_url(kit_id, request=request_id))


def _decide(services: ServicesDep, action, kit_id: uuid.UUID, target: str, user_id) -> str:  # type: ignore[no-untyped-def]
    try:
        with session_scope(services.session_factory, write=True) as session:
            outcome = action(session, kit_id, target, decided_by=user_id)
            return outcome.message
    except CatalogError as exc:
        raise refused(exc) from None


@router.post("/kits/{kit_id}/assets/{asset_id}/accept")
def accept(
    services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID, asset_id: uuid.UUID
) -> Response:
    """Use this candidate: it becomes the slot's canonical image, as a person's choice."""
    message = _decide(services, review.accept_candidate, kit_id, str(asset_id), admin.user.id)
    return redirect(kit_url(kit_id, message=quote_plus(message)))


@router.post("/kits/{kit_id}/assets/{asset_id}/reject")
def reject(
    services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID, asset_id: uuid.UUID
) -> Response:
    message = _decide(services, review.reject_candidate, kit_id, str(asset_id), admin.user.id)
    return redirect(kit_url(kit_id, message=quote_plus(message)))


@router.post("/kits/{kit_id}/candidate-sets/{candidate_set}/approve")
def approve_set(
    services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID, candidate_set: str
) -> Response:
    """Approve a whole candidate set (after a prompt change or a model upgrade)."""
    message = _decide(services, review.approve_candidate_set, kit_id, candidate_set, admin.user.id)
    return redirect(kit_url(kit_id, message=quote_plus(message)))


@router.post("/kits/{kit_id}/candidate-sets/{candidate_set}/reject")
def reject_set(
    services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID, candidate_set: str
) -> Response:
    message = _decide(services, review.reject_candidate_set, kit_id, candidate_set, admin.user.id)
    return redirect(kit_url(kit_id, message=quote_plus(message)))


__all__ = ["StudioError", "request_new_take", "router"]
