"""Studio pages for kits: the list, creating a kit, its model sheet, prompts, generation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.candidates import PENDING
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import CatalogError, InvalidTransitionError, NotFoundError
from avatar_pipeline.catalog.models import KIT_STATUSES, Character, KitGenerationRequest
from avatar_pipeline.domain.prompts import InvalidPromptError
from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.errors import status_for
from avatar_pipeline.serving.studio import views
from avatar_pipeline.serving.studio.auth import CsrfChecked, StudioAdmin
from avatar_pipeline.serving.studio.pages import SECURITY_HEADERS, StudioError, render

router = APIRouter(prefix="/studio", include_in_schema=False)

FormText = Annotated[str, Form()]
OptionalText = Annotated[str | None, Form()]


def kit_url(kit_id: uuid.UUID | str, **query: str) -> str:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/studio/kits/{kit_id}" + (f"?{tail}" if tail else "")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def refused(exc: Exception) -> StudioError:
    """A catalog or prompt error as a page: what was wrong, and nothing changed."""
    code = status_for(exc)
    return StudioError(
        code if code < 500 else 409, "Not done", str(exc), hint="Nothing was changed."
    )


def _uuid(value: str | None, kind: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise StudioError(404, f"No such {kind}", f"{value!r} is not a {kind} id") from None


@router.get("/kits")
def kits_page(
    request: Request,
    services: ServicesDep,
    _admin: StudioAdmin,
    character: str | None = None,
    status: str | None = None,
) -> Response:
    """Every kit by character and name; filter by character and status."""
    character_id = _uuid(character, "character")
    status = status or None
    if status is not None and status not in KIT_STATUSES:
        raise StudioError(422, "Unknown status", f"status must be one of {', '.join(KIT_STATUSES)}")
    with session_scope(services.session_factory) as session:
        rows = views.kit_rows(
            session, services.object_store, character_id=character_id, status=status
        )
        characters = list(session.scalars(select(Character).order_by(Character.name)))
    return render(
        request,
        "kits.html",
        {
            "rows": rows,
            "characters": characters,
            "statuses": KIT_STATUSES,
            "filter_character": str(character_id) if character_id else "",
            "filter_status": status or "",
        },
    )


@router.get("/kits/new")
def new_kit_page(request: Request, services: ServicesDep, _admin: StudioAdmin) -> Response:
    with session_scope(services.session_factory) as session:
        characters = list(session.scalars(select(Character).order_by(Character.name)))
    return render(request, "kit_new.html", {"characters": characters, "error": None, "form": {}})


@router.post("/kits")
def create_kit(
    request: Request,
    services: ServicesDep,
    admin: CsrfChecked,
    name: FormText,
    appearance_prompt: FormText,
    style_prompt: FormText,
    negative_prompt: OptionalText = None,
    character_id: OptionalText = None,
    new_character: OptionalText = None,
    generate: OptionalText = None,
) -> Response:
    """Create a draft kit (for an existing or a new character) and, by default, ask the
    pipeline to generate it."""
    form = {
        "name": name,
        "appearance_prompt": appearance_prompt,
        "style_prompt": style_prompt,
        "negative_prompt": negative_prompt or "",
        "character_id": character_id or "",
        "new_character": new_character or "",
    }
    try:
        with session_scope(services.session_factory, write=True) as session:
            if new_character and new_character.strip():
                character = repo.create_character(session, name=new_character.strip())
            elif character_id:
                character = repo.get_character(session, character_id)
            else:
                raise InvalidTransitionError(
                    "choose the kit's character, or type a name for a new character"
                )
            kit = repo.create_kit(
                session,
                name=name,
                appearance_prompt=appearance_prompt,
                style_prompt=style_prompt,
                negative_prompt=(negative_prompt or "").strip() or None,
                character_id=character.id,
                created_by=admin.user.id,
            )
            query: dict[str, str] = {}
            if generate != "no":
                gen = repo.request_generation(
                    session, kit_id=kit.id, requested_by=admin.user.id, scope="kit"
                )
                query["request"] = str(gen.id)
            target = kit_url(kit.id, **query)
    except (CatalogError, InvalidPromptError, ValueError) as exc:
        with session_scope(services.session_factory) as session:
            characters = list(session.scalars(select(Character).order_by(Character.name)))
        return render(
            request,
            "kit_new.html",
            {"characters": characters, "error": str(exc), "form": form},
            status_code=422,
        )
    return redirect(target)


@router.get("/kits/{kit_id}")
def kit_page(
    request: Request,
    services: ServicesDep,
    _admin: StudioAdmin,
    kit_id: uuid.UUID,
) -> Response:
    """The model sheet: every slot with its canonical image and candidates, the scores in
    words, the palette, pending candidate sets, and the kit's runs."""
    watch = request.query_params.get("request")
    message = request.query_params.get("message")
    with session_scope(services.session_factory) as session:
        try:
            kit = repo.get_kit(session, kit_id)
        except NotFoundError as exc:
            raise StudioError(404, "No such kit", str(exc)) from None
        character = repo.get_character(session, kit.character_id) if kit.character_id else None
        requests = list(
            session.scalars(
                select(KitGenerationRequest)
                .where(KitGenerationRequest.avatar_kit_id == kit.id)
                .order_by(KitGenerationRequest.created_at.desc(), KitGenerationRequest.id)
                .limit(8)
            )
        )
        context: dict[str, Any] = {
            "kit": kit,
            "character": character,
            "sheet": views.model_sheet(session, kit, services.object_store),
            "candidate_sets": views.candidate_sets(session, kit, services.object_store),
            "missing": views.missing_for_approval(session, kit),
            "swatches": views.palette_swatches(kit),
            "requests": [views.request_progress(session, services.settings, r) for r in requests],
            "active_request": next(
                (str(r.id) for r in requests if r.status in ("pending", "picked")), None
            ),
            "watch": watch,
            "message": message,
            "report_url": f"/reports/{kit.id}/report.html",
            "pending_count": sum(
                1
                for a in repo.list_assets(session, kit.id)
                if a.review_state == PENDING and not a.is_canonical
            ),
        }
    return render(request, "kit.html", context)


@router.post("/kits/{kit_id}/prompts")
def edit_prompts(
    services: ServicesDep,
    _admin: CsrfChecked,
    kit_id: uuid.UUID,
    appearance_prompt: FormText,
    style_prompt: FormText,
    negative_prompt: OptionalText = None,
    name: OptionalText = None,
) -> Response:
    """Change the kit's prompts. A draft kit is then re-generated by the prompt-change sensor;
    an approved kit gets a candidate set that waits for a person."""
    fields: dict[str, Any] = {
        "appearance_prompt": appearance_prompt,
        "style_prompt": style_prompt,
        "negative_prompt": (negative_prompt or "").strip() or None,
    }
    if name and name.strip():
        fields["name"] = name
    try:
        with session_scope(services.session_factory, write=True) as session:
            kit = repo.get_kit(session, kit_id)
            if kit.status == "archived":
                raise InvalidTransitionError(
                    f"kit {kit.name!r} is archived; its prompts cannot change"
                )
            repo.update_kit(session, kit_id, **fields)
    except (CatalogError, InvalidPromptError, ValueError) as exc:
        raise refused(exc) from None
    return redirect(kit_url(kit_id, message="prompts+saved"))


@router.post("/kits/{kit_id}/generate")
def generate(services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID) -> Response:
    """Ask the pipeline (kit_sensor) to generate the whole kit; the page then watches it."""
    try:
        with session_scope(services.session_factory, write=True) as session:
            kit = repo.get_kit(session, kit_id)
            if kit.status == "archived":
                raise InvalidTransitionError(
                    f"kit {kit.name!r} is archived; it cannot be generated"
                )
            gen = repo.request_generation(
                session, kit_id=kit.id, requested_by=admin.user.id, scope="kit"
            )
            request_id = str(gen.id)
    except CatalogError as exc:
        raise refused(exc) from None
    return redirect(kit_url(kit_id, request=request_id))


@router.get("/requests/{request_id}.json")
def request_status(services: ServicesDep, _admin: StudioAdmin, request_id: uuid.UUID) -> Response:
    """A generation request's status and per-slot progress (the kit page polls this)."""
    with session_scope(services.session_factory) as session:
        row = session.get(KitGenerationRequest, request_id)
        if row is None:
            raise StudioError(404, "No such request", f"no generation request {request_id}")
        body = views.request_progress(session, services.settings, row)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/kits/{kit_id}/approve")
def approve(services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID) -> Response:
    """draft -> active, only with the required slots canonical (catalog's approve_kit)."""
    try:
        with session_scope(services.session_factory, write=True) as session:
            kit = repo.get_kit(session, kit_id)
            was = kit.status
            repo.approve_kit(session, kit_id)
            if was != "active":
                repo.record_decision(
                    session, kit_id=kit_id, decision="approved_kit", decided_by=admin.user.id
                )
    except CatalogError as exc:
        raise refused(exc) from None
    return redirect(kit_url(kit_id, message="kit+approved"))


@router.post("/kits/{kit_id}/archive")
def archive(services: ServicesDep, admin: CsrfChecked, kit_id: uuid.UUID) -> Response:
    try:
        with session_scope(services.session_factory, write=True) as session:
            kit = repo.get_kit(session, kit_id)
            if kit.status != "archived":
                repo.archive_kit(session, kit_id)
                repo.record_decision(
                    session, kit_id=kit_id, decision="archived_kit", decided_by=admin.user.id
                )
    except CatalogError as exc:
        raise refused(exc) from None
    return redirect(kit_url(kit_id, message="kit+archived"))
