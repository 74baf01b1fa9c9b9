"""What the studio pages show, built from the catalog: kit rows, the model sheet, run progress.

Pure reads over a session; the routes render them. Scores are read from
``generation_metadata["consistency"]`` (verdicts pass / fail / unmeasured, each with why).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.candidates import (
    CANDIDATE_SET,
    PENDING,
    REJECTED,
    candidates_by_slot,
    pending_candidate_sets,
    take_of,
)
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character, KitGenerationRequest
from avatar_pipeline.consistency.types import verdicts_from_dict
from avatar_pipeline.domain.vocab import REQUIRED_SLOTS_FOR_APPROVAL, AssetType
from avatar_pipeline.generation.slots import ALL_SLOTS, SLOTS_BY_NAME
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore

CHECK_LABELS = {
    "identity": "same character",
    "adherence": "right expression / pose",
    "not_a_copy": "not a copy of its reference",
    "palette": "colours match the palette",
}
VERDICT_WORDS = {"pass": "passed", "fail": "failed", "unmeasured": "not measured"}
SCOPE_TYPES = {
    "kit": tuple(AssetType),
    "anchors": (AssetType.ANCHOR_PORTRAIT, AssetType.ANCHOR_FULLBODY),
    "expressions": (AssetType.EXPRESSION,),
    "poses": (AssetType.POSE,),
}
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
OTHERS_SHOWN = 3  # earlier images of a slot shown next to the canonical one


@dataclass
class CheckView:
    name: str
    label: str
    verdict: str  # pass | fail | unmeasured
    words: str
    why: str


@dataclass
class ImageView:
    asset_id: str
    slot: str
    url: str
    canonical: bool
    review_state: str | None
    take: int
    status: str  # pass | fail | unmeasured | none
    checks: list[CheckView]
    identity: str  # "0.842 / 0.780" or ""
    candidate_set: str | None
    created_at: datetime
    chosen_by_person: bool


@dataclass
class SlotView:
    name: str
    label: str
    required: bool
    canonical: ImageView | None
    pending: list[ImageView] = field(default_factory=list)
    others: list[ImageView] = field(default_factory=list)


@dataclass
class KitRow:
    kit: AvatarKit
    character: str
    thumbnail: str | None
    canonical: int
    total: int
    pending: int
    failed: int
    unmeasured: int
    last_request: KitGenerationRequest | None


def slot_label(name: str) -> str:
    if name == "anchor_portrait":
        return "Portrait (primary anchor)"
    if name == "anchor_fullbody":
        return "Full body (secondary anchor)"
    kind, _, label = name.partition(":")
    return f"{kind.capitalize()}: {label}"


def checks_of(metadata: dict[str, Any]) -> tuple[str, list[CheckView], str]:
    """(status, checks in words, identity vs threshold) of one stored image."""
    consistency = metadata.get("consistency")
    if not isinstance(consistency, dict):
        return "none", [], ""
    verdicts = verdicts_from_dict(consistency)
    checks = []
    for name, verdict in verdicts.items():
        why = verdict.why
        if not why and name == "identity" and consistency.get("identity") is not None:
            why = (
                f"similarity {consistency['identity']:.3f} to the primary anchor, "
                f"threshold {consistency.get('identity_threshold', 0):.3f}"
            )
        if verdict.unmeasured and not why:
            why = "this check could not run here"
        checks.append(
            CheckView(
                name,
                CHECK_LABELS.get(name, name.replace("_", " ")),
                verdict.verdict,
                VERDICT_WORDS[verdict.verdict],
                why,
            )
        )
    identity = ""
    if isinstance(consistency.get("identity"), int | float):
        identity = f"{consistency['identity']:.3f} / {consistency.get('identity_threshold', 0):.3f}"
    status = str(consistency.get("status") or "")
    if status not in VERDICT_WORDS:
        if any(c.verdict == "fail" for c in checks):
            status = "fail"
        elif any(c.verdict == "unmeasured" for c in checks):
            status = "unmeasured"
        else:
            status = "pass" if checks else "none"
    return status, checks, identity


def image_view(asset: AvatarAsset, store: ObjectStore) -> ImageView:
    metadata = asset.generation_metadata or {}
    status, checks, identity = checks_of(metadata)
    return ImageView(
        asset_id=str(asset.id),
        slot=repo.slot_of(asset),
        url=store.signed_url(asset.storage_bucket, asset.storage_path),  # type: ignore[arg-type]
        canonical=asset.is_canonical,
        review_state=asset.review_state,
        take=take_of(asset),
        status=status,
        checks=checks,
        identity=identity,
        candidate_set=metadata.get(CANDIDATE_SET),
        created_at=asset.created_at,
        chosen_by_person=asset.review_state == "accepted",
    )


def model_sheet(session: Session, kit: AvatarKit, store: ObjectStore) -> list[SlotView]:
    """Every slot of the sheet, in sheet order, with its canonical image and candidates."""
    by_slot = candidates_by_slot(session, kit.id)
    required = {slot.value for slot in REQUIRED_SLOTS_FOR_APPROVAL}
    names = [s.name for s in ALL_SLOTS] + sorted(set(by_slot) - set(SLOTS_BY_NAME))
    sheet = []
    for name in names:
        entry = by_slot.get(name)
        others = [a for a in entry.others if a.review_state != REJECTED] if entry else []
        sheet.append(
            SlotView(
                name=name,
                label=slot_label(name),
                required=name in required,
                canonical=image_view(entry.canonical, store) if entry and entry.canonical else None,
                pending=[image_view(a, store) for a in entry.pending] if entry else [],
                others=[image_view(a, store) for a in others[:OTHERS_SHOWN]],
            )
        )
    return sheet


def candidate_sets(session: Session, kit: AvatarKit, store: ObjectStore) -> list[dict[str, Any]]:
    """Pending candidate sets: for each slot in the set, the current image and the new one."""
    canonical = repo.canonical_assets(session, kit.id)
    out = []
    for name, rows in pending_candidate_sets(session, kit.id).items():
        pairs = []
        for asset in rows:
            slot = repo.slot_of(asset)
            old = canonical.get(slot)
            pairs.append(
                {
                    "slot": slot,
                    "label": slot_label(slot),
                    "old": image_view(old, store) if old is not None else None,
                    "new": image_view(asset, store),
                }
            )
        trigger = name.split(":", 1)[0].replace("-", " ")
        out.append({"name": name, "trigger": trigger, "pairs": pairs})
    return out


def missing_for_approval(session: Session, kit: AvatarKit) -> list[str]:
    """Slots that would still be empty if the kit were approved now (approval promotes the
    pending candidates that failed no check): the catalog's own rule."""
    try:
        from avatar_pipeline.catalog.kit_approval import missing_slots_for_approval
    except ImportError:  # older catalog: the anchors only
        canonical = repo.canonical_assets(session, kit.id)
        return [s.value for s in REQUIRED_SLOTS_FOR_APPROVAL if s.value not in canonical]
    return list(missing_slots_for_approval(session, kit))


def last_requests(
    session: Session, kit_ids: list[uuid.UUID]
) -> dict[uuid.UUID, KitGenerationRequest]:
    if not kit_ids:
        return {}
    rows = session.scalars(
        select(KitGenerationRequest)
        .where(KitGenerationRequest.avatar_kit_id.in_(kit_ids))
        .order_by(KitGenerationRequest.created_at, KitGenerationRequest.id)
    )
    return {row.avatar_kit_id: row for row in rows}


def kit_rows(
    session: Session,
    store: ObjectStore,
    *,
    character_id: uuid.UUID | None = None,
    status: str | None = None,
) -> list[KitRow]:
    kits = repo.list_kits(session, status=status, character_id=character_id)
    characters = {c.id: c.name for c in session.scalars(select(Character))}
    requests = last_requests(session, [k.id for k in kits])
    rows = []
    for kit in kits:
        assets = repo.list_assets(session, kit.id)
        canonical = {repo.slot_of(a): a for a in assets if a.is_canonical}
        newest: dict[str, AvatarAsset] = {}
        for asset in assets:
            newest[repo.slot_of(asset)] = asset
        failed = unmeasured = 0
        for slot, asset in newest.items():
            status_, _, _ = checks_of(asset.generation_metadata or {})
            if slot not in canonical and status_ == "fail":
                failed += 1
            if status_ == "unmeasured":
                unmeasured += 1
        portrait = canonical.get(AssetType.ANCHOR_PORTRAIT.value)
        rows.append(
            KitRow(
                kit=kit,
                character=characters.get(kit.character_id, "(no character)")
                if kit.character_id
                else "(no character)",
                thumbnail=store.signed_url(portrait.storage_bucket, portrait.storage_path)  # type: ignore[arg-type]
                if portrait
                else None,
                canonical=len(canonical),
                total=len(ALL_SLOTS),
                pending=sum(1 for a in assets if a.review_state == PENDING and not a.is_canonical),
                failed=failed,
                unmeasured=unmeasured,
                last_request=requests.get(kit.id),
            )
        )
    rows.sort(key=lambda r: (r.character.lower(), r.kit.name.lower()))
    return rows


def request_slots(request: KitGenerationRequest) -> list[str]:
    if request.slots:
        return [str(s) for s in request.slots]
    types = SCOPE_TYPES.get(request.scope, tuple(AssetType))
    return [s.name for s in ALL_SLOTS if s.asset_type in types]


def dagster_run_url(settings: Settings, request: KitGenerationRequest) -> str:
    base = settings.dagster_ui_url.rstrip("/")
    if request.run_id:
        return f"{base}/runs/{quote(request.run_id)}"
    return f"{base}/runs?q%5B0%5D=" + quote(f"tag:avatar/request={request.id}", safe="")


def request_progress(
    session: Session, settings: Settings, request: KitGenerationRequest
) -> dict[str, Any]:
    """The request's status and, per slot, what the catalog holds since it was made."""
    assets = [
        a
        for a in repo.list_assets(session, request.avatar_kit_id)
        if a.created_at >= request.created_at
    ]
    newest: dict[str, AvatarAsset] = {}
    for asset in assets:
        newest[repo.slot_of(asset)] = asset
    finished = request.status in ("done", "failed")
    slots = []
    for name in request_slots(request):
        asset = newest.get(name)
        if asset is None:
            state = "unchanged" if finished else "waiting"
            words = (
                "no new image (the stored one was reused, or nothing was made)"
                if finished
                else "waiting for the run"
            )
        elif asset.is_canonical:
            state, words = "canonical", "new image, now canonical"
        elif asset.review_state == PENDING:
            state, words = "review", "new image waiting for your review"
        else:
            state, words = "failed", "new image did not pass the gate"
        slots.append({"slot": name, "label": slot_label(name), "state": state, "words": words})
    return {
        "id": str(request.id),
        "kit_id": str(request.avatar_kit_id),
        "status": request.status,
        "finished": finished,
        "new_take": bool(request.new_take),
        "message": request.message,
        "run_id": request.run_id,
        "dagster_url": dagster_run_url(settings, request),
        "slots": slots,
        "done_slots": sum(1 for s in slots if s["state"] != "waiting"),
        "total_slots": len(slots),
    }


def palette_swatches(kit: AvatarKit) -> list[dict[str, str]]:
    """Colour swatches of the kit's palette contract (``consistency.palette``:
    ``{"colours": [{"name", "hex", "share"}, ...]}``); empty until the gate recorded one."""
    contract = getattr(kit, "palette_contract", None)
    colours = contract.get("colours") if isinstance(contract, dict) else None
    if not isinstance(colours, list):
        return []
    swatches = []
    for colour in colours:
        if not isinstance(colour, dict):
            continue
        value = str(colour.get("hex", ""))
        if len(value) == 7 and value[0] == "#" and all(c in HEX_DIGITS for c in value[1:]):
            share = colour.get("share")
            swatches.append(
                {
                    "name": str(colour.get("name", "")),
                    "hex": value,
                    "share": f"{float(share):.0%}" if isinstance(share, int | float) else "",
                }
            )
    return swatches
