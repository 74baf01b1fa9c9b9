"""Kit generation requests (an addition to the spec): the API asks, a Dagster sensor picks up.

Status moves ``pending -> picked -> done | failed``; a picked request may go back to pending
(re-queued), and done/failed are final.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import check_choice, guarded, require
from avatar_pipeline.catalog.errors import ConstraintViolationError, InvalidTransitionError
from avatar_pipeline.catalog.models import (
    GENERATION_SCOPES,
    GENERATION_STATUSES,
    AvatarKit,
    KitGenerationRequest,
    User,
)

_SLOT = re.compile(r"anchor_portrait|anchor_fullbody|outfit|(expression|pose):[a-z0-9_-]{1,64}")
_TRANSITIONS = {
    "pending": {"pending", "picked", "done", "failed"},
    "picked": {"picked", "pending", "done", "failed"},
    "done": {"done"},
    "failed": {"failed"},
}


def request_generation(
    session: Session,
    *,
    kit_id: uuid.UUID,
    requested_by: uuid.UUID | None = None,
    scope: str = "kit",
    slots: list[str] | None = None,
    new_take: bool = False,
) -> KitGenerationRequest:
    """Queue (re-)generation of a kit, one part of it (``scope``) or named ``slots``.

    ``new_take=True`` asks for a new take (a new seed) of exactly one slot: the image waits
    next to the canonical one for a person to choose it (generation/review.py). Without it, a
    request for an unchanged slot returns the image already made (paid once)."""
    check_choice(
        scope, GENERATION_SCOPES, field="scope", constraint="ck_kit_generation_requests_scope"
    )
    kit = require(session, AvatarKit, kit_id, "avatar kit")
    if requested_by is not None:
        requested_by = require(session, User, requested_by, "user").id
    if slots is not None:
        bad = [slot for slot in slots if not _SLOT.fullmatch(str(slot))]
        if bad:
            raise ConstraintViolationError(
                f"unknown slot names {bad}; use 'anchor_portrait', 'anchor_fullbody', "
                "'expression:<name>' or 'pose:<name>'",
                constraint="slot_name",
            )
        slots = [str(slot) for slot in slots]
    extra = {}
    if new_take:
        if not slots or len(slots) != 1 or slots[0] == "outfit":
            raise ConstraintViolationError(
                f"a new take is of exactly one slot, got {slots or 'none'}; name it, e.g. "
                "slots=['expression:shy'] (CLI: --slot expression:shy --new-take)",
                constraint="new_take_one_slot",
            )
        from avatar_pipeline.generation.slots import SLOTS_BY_NAME

        if slots[0] not in SLOTS_BY_NAME:
            raise ConstraintViolationError(
                f"no slot {slots[0]!r} on the model sheet; use one of {', '.join(SLOTS_BY_NAME)}",
                constraint="slot_name",
            )
        if kit.status == "archived":
            raise ConstraintViolationError(
                f"kit {kit.id} ({kit.name!r}) is archived; set it back to draft before new takes",
                constraint="new_take_archived",
            )
        extra["new_take"] = True
    request = KitGenerationRequest(
        avatar_kit_id=kit.id, requested_by=requested_by, scope=scope, slots=slots, **extra
    )
    with guarded(session, f"generation request for kit {kit.id}"):
        session.add(request)
    return request


def pending_generation_requests(session: Session) -> list[KitGenerationRequest]:
    """Pending requests, oldest first."""
    query = (
        select(KitGenerationRequest)
        .where(KitGenerationRequest.status == "pending")
        .order_by(KitGenerationRequest.created_at, KitGenerationRequest.id)
    )
    return list(session.scalars(query))


def set_request_run(
    session: Session, request_id: uuid.UUID | str, run_id: str
) -> KitGenerationRequest | None:
    """Record the Dagster run serving a request (None if the request is gone)."""
    request = session.get(KitGenerationRequest, uuid.UUID(str(request_id)))
    if request is None:
        return None
    if getattr(request, "run_id", None) != run_id and hasattr(request, "run_id"):
        with guarded(session, f"generation request {request.id}"):
            request.run_id = run_id
    return request


def mark_generation_request(
    session: Session, request_id: uuid.UUID, status: str
) -> KitGenerationRequest:
    check_choice(
        status, GENERATION_STATUSES, field="status", constraint="ck_kit_generation_requests_status"
    )
    request = require(session, KitGenerationRequest, request_id, "generation request")
    if status not in _TRANSITIONS[request.status]:
        raise InvalidTransitionError(
            f"generation request {request.id} is {request.status!r} and cannot become {status!r}; "
            "create a new request instead"
        )
    with guarded(session, f"generation request {request.id}"):
        request.status = status
    return request
