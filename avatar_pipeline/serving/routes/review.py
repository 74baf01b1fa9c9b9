"""A small HTML page for art ops to eyeball a kit's model sheet before approving it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.domain.vocab import REQUIRED_SLOTS_FOR_APPROVAL
from avatar_pipeline.serving.deps import AdminUser, ObjectStoreDep, SessionDep

router = APIRouter(prefix="/review", tags=["review"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _identity(metadata: dict[str, Any]) -> float | None:
    consistency = metadata.get("consistency")
    if isinstance(consistency, dict):
        value = consistency.get("identity")
        if isinstance(value, int | float):
            return float(value)
    return None


@router.get("/avatar-kits/{kit_id}", response_class=HTMLResponse, response_model=None)
def review_kit(
    session: SessionDep, _admin: AdminUser, store: ObjectStoreDep, kit_id: uuid.UUID
) -> HTMLResponse:
    """The kit's prompts and every active asset (canonical ones outlined), anchors first."""
    kit = repo.get_kit(session, kit_id)
    anchors = {kit.primary_anchor_id: "primary", kit.secondary_anchor_id: "secondary"}
    assets = sorted(
        repo.list_assets(session, kit.id),
        key=lambda a: (a.id not in anchors, not a.is_canonical, repo.slot_of(a), a.created_at),
    )
    canonical = repo.canonical_assets(session, kit.id)
    page = _templates.get_template("kit_review.html").render(
        kit=kit,
        missing=[s.value for s in REQUIRED_SLOTS_FOR_APPROVAL if s.value not in canonical],
        assets=[
            {
                "asset": a,
                "slot": repo.slot_of(a),
                "anchor": anchors.get(a.id),
                "identity": _identity(a.generation_metadata or {}),
                "url": store.signed_url(a.storage_bucket, a.storage_path),  # type: ignore[arg-type]
            }
            for a in assets
        ],
    )
    return HTMLResponse(page)
