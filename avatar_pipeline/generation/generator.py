"""Produce the slots of one kit: generate/edit, score, store, register, promote.

The order is the kit's dependency graph run as concurrent tasks, so one kit costs about its
critical path (portrait -> full body -> poses) rather than the sum of its calls:

    portrait ──┬── full body ── poses (edit from [portrait, full body])
               └── expressions (edit from [portrait]), all at once

Each slot writes at most one new row: the best of N candidates (by identity score). The row
is written as a candidate; it becomes canonical in the same transaction only when every
consistency check passed. A provider failure writes nothing for that slot; a DB failure
after the object was stored deletes the object again (no orphans).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.consistency.scores import (
    EXPRESSION_TEMPLATE,
    POSE_TEMPLATE,
    CandidateInput,
    score_anchor,
    score_slots,
)
from avatar_pipeline.consistency.types import Embedder, SlotScore, Thresholds
from avatar_pipeline.domain.vocab import AssetType, SourceType
from avatar_pipeline.generation.budget import KitBudget
from avatar_pipeline.generation.outcomes import SlotOutcome, SlotStatus
from avatar_pipeline.generation.scheduling import PriorityGate
from avatar_pipeline.generation.slots import (
    ALL_SLOTS,
    FULLBODY_SLOT,
    PORTRAIT_SLOT,
    Slot,
    seed_for,
)
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import ImageResponse, ImageServiceError
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectStore

logger = logging.getLogger(__name__)

# How far an edit may move away from its reference, per slot kind (see imaging docs for how
# each provider maps it): the full body re-frames the portrait, expressions change the face,
# poses change the body.
EDIT_STRENGTH = {
    AssetType.ANCHOR_FULLBODY: 0.6,
    AssetType.EXPRESSION: 0.5,
    AssetType.POSE: 0.7,
}


@dataclass(frozen=True)
class GenerationOptions:
    candidates_per_slot: int = 1
    kit_cost_budget_usd: float = 5.0
    estimated_cost_per_image_usd: float = 0.05
    width: int = 1024
    height: int = 1024
    reroll: int = 0
    trigger: str = "manual"
    # Re-generation after a model upgrade must be at least as consistent as the images it
    # replaces (minus this tolerance); an explicit re-roll or a prompt change need only pass.
    no_regression: bool = False
    improvement_tolerance: float = 0.0


class KitGenerator:
    """Produces a kit's selected slots against the catalog, object store and ImageService."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        store: ObjectStore,
        image_service: ImageService,
        embedder: Embedder,
        thresholds: Thresholds,
        options: GenerationOptions | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.session_factory = session_factory
        self.store = store
        self.images = image_service
        self.embedder = embedder
        self.thresholds = thresholds
        self.options = options or GenerationOptions()
        self._log = log or logger.info

    # ------------------------------------------------------------------ entry point
    async def run(self, kit_id: str, slot_names: Iterable[str] | None = None) -> list[SlotOutcome]:
        """Produce the named slots (default: all) of one kit; outcomes in slot order."""
        wanted = {s.name for s in ALL_SLOTS} if slot_names is None else set(slot_names)
        selected = [s for s in ALL_SLOTS if s.name in wanted]
        unknown = wanted - {s.name for s in ALL_SLOTS}
        if unknown:
            raise ValueError(f"unknown slots {sorted(unknown)}")
        self._scoring = PriorityGate()

        with session_scope(self.session_factory) as session:
            kit = repo.get_kit(session, uuid.UUID(kit_id))
            if kit.status == "archived":
                raise ValueError(f"kit {kit_id} is archived; restore it before generating")
            self.kit_prompts = repo.kit_prompts(kit).validate()
            self.kit_id = str(kit.id)
            canonical = repo.canonical_assets(session, kit.id)
            self._canonical = {
                slot: (
                    str(a.id),
                    a.storage_bucket,
                    a.storage_path,
                    dict(a.generation_metadata or {}),
                )
                for slot, a in canonical.items()
            }
            manual = [
                a
                for a in repo.list_assets(
                    session, kit.id, asset_type=AssetType.ANCHOR_PORTRAIT.value
                )
                if a.source_type in (SourceType.MANUAL_UPLOAD.value, SourceType.IMPORTED.value)
            ]
            primary_id = str(kit.primary_anchor_id) if kit.primary_anchor_id else None
            manual.sort(key=lambda a: (str(a.id) != primary_id, a.created_at), reverse=False)
            self._manual_portrait = (
                (str(manual[0].id), manual[0].storage_bucket, manual[0].storage_path)
                if manual
                else None
            )
            spent = repo.kit_total_cost(session, kit.id)
        self.budget = KitBudget(
            kit_id,
            self.options.kit_cost_budget_usd,
            spent,
            self.options.estimated_cost_per_image_usd,
        )

        outcomes: dict[str, SlotOutcome] = {}

        # 1. the primary anchor
        if PORTRAIT_SLOT in selected:
            portrait = await self._portrait()
            outcomes[PORTRAIT_SLOT.name] = portrait
            anchor = (portrait.asset_id, portrait.image) if portrait.passed else None
            anchor_reason = None if portrait.passed else "anchor_portrait failed the gate"
        else:
            anchor = await self._load_canonical(PORTRAIT_SLOT.name)
            anchor_reason = None if anchor else "the kit has no canonical anchor_portrait yet"

        derived = [s for s in selected if s is not PORTRAIT_SLOT]
        if anchor is None:
            for slot in derived:
                outcomes[slot.name] = SlotOutcome(slot, SlotStatus.SKIPPED, reason=anchor_reason)
            return [outcomes[s.name] for s in selected]

        # 2. full body and expressions at once; poses as soon as the full body is known
        async def fullbody_ref() -> tuple[str, bytes] | None:
            if FULLBODY_SLOT in selected:
                out = await self._derived(FULLBODY_SLOT, anchor, [anchor])
                outcomes[FULLBODY_SLOT.name] = out
                return (str(out.asset_id), out.image) if out.passed and out.image else None
            return await self._load_canonical(FULLBODY_SLOT.name)

        fullbody_task = asyncio.create_task(fullbody_ref())

        async def expression(slot: Slot) -> None:
            outcomes[slot.name] = await self._derived(slot, anchor, [anchor])

        async def pose(slot: Slot) -> None:
            body = await fullbody_task
            if body is None and FULLBODY_SLOT in selected:
                outcomes[slot.name] = SlotOutcome(
                    slot, SlotStatus.SKIPPED, reason="anchor_fullbody failed the gate"
                )
                return
            refs = [anchor, body] if body else [anchor]
            outcomes[slot.name] = await self._derived(slot, anchor, refs)

        tasks = [fullbody_task]
        for slot in derived:
            if slot.asset_type is AssetType.EXPRESSION:
                tasks.append(asyncio.create_task(expression(slot)))
            elif slot.asset_type is AssetType.POSE:
                tasks.append(asyncio.create_task(pose(slot)))
        await asyncio.gather(*tasks)
        return [outcomes[s.name] for s in selected]

    async def recheck(self, kit_id: str, slot_names: Iterable[str]) -> list[SlotOutcome]:
        """Run the checks again on each slot's newest stored image, with the current embedder
        and thresholds: no provider call, and canonical flags are left as they are."""
        wanted = set(slot_names)
        selected = [s for s in ALL_SLOTS if s.name in wanted]
        self._scoring = PriorityGate()
        with session_scope(self.session_factory) as session:
            kit = repo.get_kit(session, uuid.UUID(kit_id))
            stored = {}
            for asset in sorted(repo.list_assets(session, kit.id), key=lambda a: a.created_at):
                stored[repo.slot_of(asset)] = asset
            located = {a.id: (a.storage_bucket, a.storage_path) for a in stored.values()}
            rows = {
                slot: (
                    str(a.id),
                    a.storage_bucket,
                    a.storage_path,
                    a.derived_from_id,
                    a.is_canonical,
                )
                for slot, a in stored.items()
            }
            primary = (
                repo.get_asset(session, kit.primary_anchor_id) if kit.primary_anchor_id else None
            )
            anchor_location = (primary.storage_bucket, primary.storage_path) if primary else None
            for row in rows.values():
                if row[3] is not None and row[3] not in located:
                    source = repo.get_asset(session, row[3])
                    located[source.id] = (source.storage_bucket, source.storage_path)

        if anchor_location is None:
            reason = "the kit has no primary anchor to check against"
            return [SlotOutcome(slot, SlotStatus.SKIPPED, reason=reason) for slot in selected]
        anchor = await asyncio.to_thread(self.store.get, *anchor_location)
        outcomes = []
        for slot in selected:
            row = rows.get(slot.name)
            if row is None:
                outcomes.append(SlotOutcome(slot, SlotStatus.SKIPPED, reason="no image yet"))
                continue
            asset_id, bucket, path, derived_from, canonical = row
            image = await asyncio.to_thread(self.store.get, bucket, path)
            if slot is PORTRAIT_SLOT:
                score = score_anchor(
                    self.embedder, anchor=image, previous_anchor=None, thresholds=self.thresholds
                )
            else:
                reference = (
                    await asyncio.to_thread(self.store.get, *located[derived_from])
                    if derived_from is not None
                    else anchor
                )
                (score,) = await self._score(anchor, [_candidate(slot, image, reference)])
            outcomes.append(
                SlotOutcome(
                    slot,
                    SlotStatus.REUSED,
                    asset_id=asset_id,
                    storage_bucket=bucket,
                    storage_path=path,
                    image=image,
                    score=score,
                    was_canonical=bool(canonical),
                    derived_from_id=str(derived_from) if derived_from else None,
                    reason="re-checked the stored image",
                )
            )
        return outcomes

    # ------------------------------------------------------------------ slots
    async def _portrait(self) -> SlotOutcome:
        slot = PORTRAIT_SLOT
        if self._manual_portrait is not None:
            asset_id, bucket, path = self._manual_portrait
            image = await asyncio.to_thread(self.store.get, bucket, path)
            with session_scope(self.session_factory) as session:
                asset = repo.get_asset(session, uuid.UUID(asset_id))
                promoted = not asset.is_canonical
                if promoted:
                    repo.promote_to_canonical(session, [asset.id])
            return SlotOutcome(
                slot,
                SlotStatus.UPLOADED,
                asset_id=asset_id,
                storage_bucket=bucket,
                storage_path=path,
                image=image,
                promoted=promoted,
                was_canonical=not promoted,
                reason="uploaded anchor stands: generation never overwrites it",
            )

        prompt = slot.prompt(self.kit_prompts)
        try:
            responses = await self._candidates(
                slot,
                lambda seed: self.images.generate(
                    prompt,
                    negative_prompt=self.kit_prompts.negative_prompt,
                    width=self.options.width,
                    height=self.options.height,
                    seed=seed,
                ),
            )
        except (ImageServiceError, ValueError) as exc:
            return SlotOutcome(slot, SlotStatus.FAILED, reason=str(exc))

        previous = self._canonical.get(slot.name)
        same_contract = (
            previous is not None
            and previous[3].get("kit_prompt_hash") == self.kit_prompts.prompt_hash
        )
        # A re-generated primary anchor (e.g. after a model upgrade) must still be the same
        # character as the anchor it replaces; a first anchor, or one for changed prompts,
        # defines a new identity.
        old = None
        if same_contract and previous is not None:
            old = await asyncio.to_thread(self.store.get, previous[1], previous[2])
        else:
            reason = "first anchor" if previous is None else "prompts changed: new identity"
            self._log(f"{slot.name}: {reason}; it defines the kit's identity")
        async with self._scoring.turn(priority=0):
            scores = [
                await asyncio.to_thread(
                    score_anchor,
                    self.embedder,
                    anchor=r.image,
                    previous_anchor=old,
                    thresholds=self.thresholds,
                )
                for r in responses
            ]
        return await self._commit(slot, responses, scores, derived_from=None, references=[])

    async def _derived(
        self, slot: Slot, anchor: tuple[str, bytes], refs: list[tuple[str, bytes]]
    ) -> SlotOutcome:
        prompt = slot.prompt(self.kit_prompts)
        ref_images = [image for _, image in refs]
        try:
            responses = await self._candidates(
                slot,
                lambda seed: self.images.edit(
                    prompt,
                    ref_images,
                    negative_prompt=self.kit_prompts.negative_prompt,
                    edit_strength=EDIT_STRENGTH[slot.asset_type],
                    width=self.options.width,
                    height=self.options.height,
                    seed=seed,
                ),
            )
        except (ImageServiceError, ValueError) as exc:
            return SlotOutcome(slot, SlotStatus.FAILED, reason=str(exc))

        copy_ref = ref_images[-1]  # the image it was edited from most directly
        inputs = [_candidate(slot, r.image, copy_ref) for r in responses]
        current = None
        previous = self._canonical.get(slot.name)
        if previous is not None and self.options.no_regression:
            old = await asyncio.to_thread(self.store.get, previous[1], previous[2])
            if old not in {r.image for r in responses}:
                (old_score,) = await self._score(
                    anchor[1], [CandidateInput(slot.name, old, copy_ref)]
                )
                if old_score.identity is not None:
                    current = {slot.name: old_score.identity}
        scores = await self._score(anchor[1], inputs, current, priority=0 if slot.is_anchor else 1)
        return await self._commit(
            slot, responses, scores, derived_from=refs[-1][0], references=[i for i, _ in refs]
        )

    # ------------------------------------------------------------------ helpers
    async def _candidates(self, slot: Slot, call: Callable[[int], Any]) -> list[ImageResponse]:
        async def one(index: int) -> ImageResponse:
            self.budget.reserve(slot.name)
            response: ImageResponse = await call(
                seed_for(self.kit_id, slot.name, index, self.options.reroll)
            )
            self.budget.settle(self.budget.estimate, response.cost_usd)
            return response

        return list(
            await asyncio.gather(*(one(i) for i in range(self.options.candidates_per_slot)))
        )

    async def _score(
        self,
        anchor: bytes,
        inputs: list[CandidateInput],
        current: dict[str, float] | None = None,
        priority: int = 1,
    ) -> list[SlotScore]:
        async with self._scoring.turn(priority):
            return await asyncio.to_thread(
                score_slots,
                self.embedder,
                anchor=anchor,
                candidates=inputs,
                thresholds=self.thresholds,
                current_canonical_scores=current,
                regression_tolerance=self.options.improvement_tolerance,
            )

    async def _load_canonical(self, slot_name: str) -> tuple[str, bytes] | None:
        entry = self._canonical.get(slot_name)
        if entry is None:
            return None
        return entry[0], await asyncio.to_thread(self.store.get, entry[1], entry[2])

    async def _commit(
        self,
        slot: Slot,
        responses: list[ImageResponse],
        scores: list[SlotScore],
        *,
        derived_from: str | None,
        references: list[str],
    ) -> SlotOutcome:
        ranked = sorted(
            zip(responses, scores, strict=True),
            key=lambda rs: (rs[1].passed, rs[1].identity if rs[1].identity is not None else 1.0),
            reverse=True,
        )
        response, score = ranked[0]
        alternatives = [
            {"seed": r.seed, "fingerprint": r.fingerprint, "scores": s.as_dict()}
            for r, s in ranked[1:]
        ]
        metadata = {
            **response.to_metadata(),
            "slot": slot.name,
            "kit_prompt_hash": self.kit_prompts.prompt_hash,
            "slot_definition_hash": slot.definition_hash,
            "reference_asset_ids": references,
            "consistency": score.as_dict(),
            "alternatives": alternatives,
            "trigger": self.options.trigger,
        }
        outcome = SlotOutcome(
            slot,
            SlotStatus.GENERATED,
            image=response.image,
            score=score,
            derived_from_id=derived_from,
            generation=metadata,
            alternatives=alternatives,
        )

        with session_scope(self.session_factory) as session:
            existing = repo.find_asset_by_fingerprint(
                session, uuid.UUID(self.kit_id), response.fingerprint
            )
            if existing is not None:
                outcome.status = SlotStatus.REUSED
                outcome.asset_id = str(existing.id)
                outcome.storage_bucket = existing.storage_bucket
                outcome.storage_path = existing.storage_path
                outcome.was_canonical = bool(existing.is_canonical)
                outcome.derived_from_id = (
                    str(existing.derived_from_id) if existing.derived_from_id else None
                )
                if score.passed and not existing.is_canonical:
                    repo.promote_to_canonical(session, [existing.id])
                    outcome.promoted = True
                return outcome

        asset_id = uuid.uuid4()
        path = keys.avatar_asset_path(self.kit_id, slot.asset_type, str(asset_id), slot.label)
        await asyncio.to_thread(self.store.put, "avatars", path, response.image, "image/png")
        try:
            with session_scope(self.session_factory) as session:
                width, height = _png_size(response.image)
                repo.register_asset(
                    session,
                    kit_id=uuid.UUID(self.kit_id),
                    asset_id=asset_id,
                    asset_type=slot.asset_type.value,
                    storage_path=path,
                    source_type=SourceType.AI_GENERATED.value,
                    expression=slot.label if slot.asset_type is AssetType.EXPRESSION else None,
                    pose=slot.label if slot.asset_type is AssetType.POSE else None,
                    emotion_tags=_emotion_tags(slot),
                    derived_from_id=uuid.UUID(derived_from) if derived_from else None,
                    generation_metadata=metadata,
                    width=width,
                    height=height,
                    file_size_bytes=len(response.image),
                )
                if score.passed:
                    session.flush()
                    repo.promote_to_canonical(session, [asset_id])
        except BaseException:
            await asyncio.to_thread(self.store.delete, "avatars", path)
            raise
        outcome.asset_id = str(asset_id)
        outcome.storage_path = path
        outcome.promoted = score.passed
        self._log(
            f"{slot.name}: asset {asset_id} "
            + ("promoted to canonical" if score.passed else "kept as a candidate (gate failed)")
        )
        return outcome


def _candidate(slot: Slot, image: bytes, reference: bytes) -> CandidateInput:
    """A candidate for the scorer: adherence ranks the slot's label among its kind's labels."""
    template = POSE_TEMPLATE if slot.asset_type is AssetType.POSE else EXPRESSION_TEMPLATE
    return CandidateInput(slot.name, image, reference, slot.label, slot.label_set, template)


def _emotion_tags(slot: Slot) -> list[str] | None:
    definition = slot.definition
    if slot.asset_type is AssetType.EXPRESSION and definition is not None:
        return list(definition.emotion_tags)  # type: ignore[union-attr]
    return None


def _png_size(data: bytes) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as img:
        return img.size
