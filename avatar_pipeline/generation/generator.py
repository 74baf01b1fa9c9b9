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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import candidates
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope, write_transaction
from avatar_pipeline.consistency.palette import extract_palette
from avatar_pipeline.consistency.scores import (
    EXPRESSION_TEMPLATE,
    POSE_TEMPLATE,
    CandidateInput,
    score_anchor,
    score_slots,
)
from avatar_pipeline.consistency.types import UNMEASURED, Embedder, SlotScore, Thresholds
from avatar_pipeline.domain.vocab import AssetType, SourceType
from avatar_pipeline.generation import review
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
from avatar_pipeline.generation.upgrade import canary_hold, is_canary
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
    # A new take (generation/review.py): each selected slot gets a new seed (the next take
    # number, or ``reroll`` when set) and the image waits for a person (review_state pending).
    # ``run_token`` identifies the request/run: the same token re-run reuses its take (paid once)
    # and names the candidate set of an approved kit's run.
    new_take: bool = False
    run_token: str = ""
    # An image whose required checks could not all be measured (e.g. adherence without a text
    # tower): "review" stores it non-canonical with review_state='pending' for a person (kit
    # approval or the review flow); "reject" keeps it as a plain failed candidate.
    unmeasured_policy: str = "review"


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
        # shared by every kit of a multi-kit run (assets.fleet_runs); None: one per kit run
        self.scoring_gate: PriorityGate | None = None
        self.embedder = embedder
        self.thresholds = thresholds
        self.options = options or GenerationOptions()
        self._log = log or logger.info

    # ------------------------------------------------------------------ entry point
    async def run(
        self,
        kit_id: str,
        slot_names: Iterable[str] | None = None,
        *,
        on_outcome: Callable[[SlotOutcome], None] | None = None,
    ) -> list[SlotOutcome]:
        """Produce the named slots (default: all) of one kit; outcomes in slot order.

        ``on_outcome`` is called with each slot's outcome as soon as that slot is finished (so a
        caller can record it before the rest of the kit is done)."""
        wanted = {s.name for s in ALL_SLOTS} if slot_names is None else set(slot_names)
        selected = [s for s in ALL_SLOTS if s.name in wanted]
        unknown = wanted - {s.name for s in ALL_SLOTS}
        if unknown:
            raise ValueError(f"unknown slots {sorted(unknown)}")
        self._scoring = self.scoring_gate or PriorityGate()

        with session_scope(self.session_factory) as session:
            kit = repo.get_kit(session, uuid.UUID(kit_id))
            if kit.status == "archived":
                raise ValueError(f"kit {kit_id} is archived; restore it before generating")
            self.kit_prompts = repo.kit_prompts(kit).validate()
            self.kit_id = str(kit.id)
            self.kit_status = kit.status
            canonical = repo.canonical_assets(session, kit.id)
            # slots whose canonical image a person chose: no run replaces it (review.py)
            self._chosen = {s for s, a in canonical.items() if a.review_state == "accepted"}
            self._takes = self._take_numbers(session, selected)
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

        outcomes: dict[str, SlotOutcome] = _ReportingOutcomes(on_outcome)

        # 1. the primary anchor
        if PORTRAIT_SLOT in selected:
            portrait = await self._portrait()
            outcomes[PORTRAIT_SLOT.name] = portrait
            anchor = (portrait.asset_id, portrait.image) if portrait.passed else None
            anchor_reason = None if portrait.passed else _blocked_by(portrait)
        else:
            anchor = await self._load_canonical(PORTRAIT_SLOT.name)
            anchor_reason = None if anchor else "the kit has no canonical anchor_portrait yet"

        derived = [s for s in selected if s is not PORTRAIT_SLOT]
        if anchor is None:
            for slot in derived:
                outcomes[slot.name] = SlotOutcome(
                    slot, SlotStatus.SKIPPED, reason=anchor_reason, failure_kind="blocked"
                )
            return [outcomes[s.name] for s in selected]
        if derived:
            await self._ensure_palette(anchor)

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
                    slot,
                    SlotStatus.SKIPPED,
                    reason=_blocked_by(outcomes[FULLBODY_SLOT.name]),
                    failure_kind="blocked",
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
        self._scoring = self.scoring_gate or PriorityGate()
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

            self._palette = dict(kit.palette_contract) if kit.palette_contract else None
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

    def _take_numbers(self, session: Session, selected: list[Slot]) -> dict[str, int]:
        """Slot -> take number for a new-take run (``reroll`` when set, else the next take, or
        the take this run's token already stored); empty for an ordinary run."""
        if not (self.options.new_take or self.options.reroll):
            return {}
        if not self.options.new_take:
            return {s.name: self.options.reroll for s in selected}
        token = self.options.run_token
        return {
            s.name: self.options.reroll
            or candidates.take_for_request(session, uuid.UUID(self.kit_id), s.name, token)
            for s in selected
        }

    def _hold(self, slot: Slot) -> str | None:
        """Why this slot's new image must wait for a person (None: the gate decides)."""
        return review.hold_reason(
            kit_status=getattr(self, "kit_status", "draft"),
            take=getattr(self, "_takes", {}).get(slot.name, 0),
            chosen_by_person=slot.name in getattr(self, "_chosen", set()),
        )

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
            return SlotOutcome(
                slot, SlotStatus.FAILED, reason=str(exc), failure_kind=failure_kind_of(exc)
            )

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
            return SlotOutcome(
                slot, SlotStatus.FAILED, reason=str(exc), failure_kind=failure_kind_of(exc)
            )

        copy_ref = ref_images[-1]  # the image it was edited from most directly
        # not-a-copy compares with every reference, the primary anchor and the siblings
        labelled = [
            (_reference_label(i, ref_id, anchor[0]), img) for i, (ref_id, img) in enumerate(refs)
        ]
        self._add_run_images(slot, [r.image for r in responses])
        siblings = await self._siblings(slot)
        inputs = [
            _candidate(slot, r.image, copy_ref, references=labelled, siblings=siblings)
            for r in responses
        ]
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
    def _discard_unregistered(self, asset_id: uuid.UUID, path: str) -> None:
        """Delete the object written for ``asset_id`` unless a row (another run's) holds it."""
        try:
            if _registered(self.session_factory, asset_id):
                return
        except Exception:  # the catalog is unreachable: the sweep finds the object later
            logger.warning("could not check asset %s; left %s for the sweep", asset_id, path)
            return
        self.store.delete("avatars", path)

    def _set_id(self) -> str:
        """Short id of this run's candidate set (stable for one request/run token)."""
        if not self.options.run_token:
            self.options = replace(self.options, run_token=uuid.uuid4().hex)
        return _set_id_for(self.options.run_token)

    async def _candidates(self, slot: Slot, call: Callable[[int], Any]) -> list[ImageResponse]:
        async def one(index: int) -> ImageResponse:
            self.budget.reserve(slot.name)
            reroll = getattr(self, "_takes", {}).get(slot.name, self.options.reroll)
            response: ImageResponse = await call(seed_for(self.kit_id, slot.name, index, reroll))
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
                palette_contract=getattr(self, "_palette", None),
            )

    async def _ensure_palette(self, anchor: tuple[str, bytes]) -> None:
        """The kit's palette contract: from the kit row when it was taken from this anchor, else
        extracted from the anchor (and stored on the kit when the anchor is its primary)."""
        anchor_id, image = anchor
        with session_scope(self.session_factory) as session:
            stored = repo.get_kit(session, uuid.UUID(self.kit_id)).palette_contract
        if stored and stored.get("anchor_asset_id") == anchor_id:
            self._palette: dict[str, Any] | None = dict(stored)
            return
        contract = (await asyncio.to_thread(extract_palette, image)).as_dict()
        contract["anchor_asset_id"] = anchor_id
        self._palette = contract
        with session_scope(self.session_factory) as session:
            kit = repo.get_kit(session, uuid.UUID(self.kit_id))
            if str(kit.primary_anchor_id) == anchor_id:
                kit.palette_contract = contract

    def _add_run_images(self, slot: Slot, images: list[bytes]) -> None:
        if slot.asset_type in (AssetType.EXPRESSION, AssetType.POSE):
            run_images = self.__dict__.setdefault("_run_images", {})
            run_images[slot.name] = images

    async def _siblings(self, slot: Slot) -> list[tuple[str, bytes]]:
        """The kit's other images of the slot's kind: this run's and the canonical ones."""
        if slot.asset_type not in (AssetType.EXPRESSION, AssetType.POSE):
            return []
        kind = slot.asset_type.value + ":"
        found: list[tuple[str, bytes]] = []
        for name, images in dict(self.__dict__.get("_run_images", {})).items():
            if name != slot.name and name.startswith(kind):
                found.extend((f"{name} (this run)", image) for image in images)
        for name in sorted(self._canonical):
            if name != slot.name and name.startswith(kind):
                loaded = await self._load_canonical(name)
                if loaded is not None:
                    found.append((f"canonical {name}", loaded[1]))
        return found

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
        hold = self._hold(slot) or canary_hold(self.options.trigger)
        if (
            hold is None
            and score.status == UNMEASURED
            and self.options.unmeasured_policy == "review"
        ):
            hold = "waits for a person: " + ", ".join(f"{n} not measured" for n in score.unmeasured)
        take = getattr(self, "_takes", {}).get(slot.name, 0)
        if take:
            metadata.update({candidates.TAKE: take, candidates.TAKE_TOKEN: self.options.run_token})
        elif hold and (self.kit_status == "active" or is_canary(self.options.trigger)):
            metadata.setdefault(
                candidates.CANDIDATE_SET, f"{self.options.trigger}:{self._set_id()}"
            )
        outcome = SlotOutcome(
            slot,
            SlotStatus.GENERATED,
            image=response.image,
            score=score,
            derived_from_id=derived_from,
            generation=metadata,
            alternatives=alternatives,
        )

        with session_scope(self.session_factory, write=True) as session:  # api_load: lock first
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
                if score.passed and not existing.is_canonical and hold is None:
                    repo.promote_to_canonical(session, [existing.id])
                    outcome.promoted = True
                elif hold and not existing.is_canonical:
                    outcome.reason = f"kept as a candidate: {hold}"
                return outcome

        # Deterministic per (kit, request fingerprint): a re-run after a crash between the object
        # write and the row writes the same key again instead of leaving an orphan object.
        asset_id = asset_id_for(self.kit_id, response.fingerprint)
        path = keys.avatar_asset_path(self.kit_id, slot.asset_type, str(asset_id), slot.label)
        await asyncio.to_thread(self.store.put, "avatars", path, response.image, "image/png")

        def record(session: Session) -> None:
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
            if hold is not None:
                session.flush()
                repo.get_asset(session, asset_id).review_state = candidates.PENDING
            elif score.passed:
                session.flush()
                repo.promote_to_canonical(session, [asset_id])

        try:
            # api_load: write lock taken up front, retried on a lost race, off the event loop
            await asyncio.to_thread(write_transaction, self.session_factory, record)
        except BaseException:
            # the key is deterministic: a concurrent run may have registered this very image
            await asyncio.to_thread(self._discard_unregistered, asset_id, path)
            raise
        outcome.asset_id = str(asset_id)
        outcome.storage_path = path
        outcome.promoted = score.passed and hold is None
        if hold is not None:
            outcome.reason = f"kept as a candidate: {hold}"
        self._log(
            f"{slot.name}: asset {asset_id} "
            + (
                f"kept as a pending candidate ({hold})"
                if hold is not None
                else "promoted to canonical"
                if score.passed
                else "kept as a candidate (gate failed)"
            )
        )
        return outcome


def _registered(session_factory: sessionmaker[Session], asset_id: uuid.UUID) -> bool:
    from avatar_pipeline.catalog.models import AvatarAsset

    with session_scope(session_factory) as session:
        return session.get(AvatarAsset, asset_id) is not None


class _ReportingOutcomes(dict[str, SlotOutcome]):
    """The run's outcomes; tells ``callback`` about each slot as soon as it is set."""

    def __init__(self, callback: Callable[[SlotOutcome], None] | None) -> None:
        super().__init__()
        self._callback = callback

    def __setitem__(self, key: str, value: SlotOutcome) -> None:
        super().__setitem__(key, value)
        if self._callback is not None:
            try:
                self._callback(value)
            except Exception:  # a listener must not break generation
                logger.exception("on_outcome listener failed for %s", key)


ASSET_ID_NAMESPACE = uuid.UUID("1d7d5f0e-8a53-4f5c-9d1e-6c1b4a9e2f77")


def asset_id_for(kit_id: str, fingerprint: str) -> uuid.UUID:
    """The id (and so the object key) of a generated image: one per kit and request."""
    return uuid.uuid5(ASSET_ID_NAMESPACE, f"{kit_id}:{fingerprint}")


def failure_kind_of(exc: BaseException) -> str:
    """How a slot failed: 'safety_refusal', 'budget', 'invalid_request' or 'provider'."""
    from avatar_pipeline.imaging.types import BudgetExceededError, SafetyRefusalError

    if isinstance(exc, SafetyRefusalError):
        return "safety_refusal"
    if isinstance(exc, BudgetExceededError) or type(exc).__name__ == "BudgetExceededError":
        return "budget"
    if isinstance(exc, ValueError):
        return "invalid_request"
    return "provider"


def _blocked_by(outcome: SlotOutcome) -> str:
    """Why the slots derived from ``outcome``'s anchor cannot be made in this run."""
    name = outcome.slot.name
    if outcome.status is SlotStatus.FAILED:
        kind = (
            "refused by the provider's safety filter"
            if outcome.failure_kind == "safety_refusal"
            else "could not be generated"
        )
        return f"waits for {name}, which {kind}: {outcome.reason}"
    if outcome.status is SlotStatus.SKIPPED:
        return f"waits for {name}, which was skipped: {outcome.reason}"
    return f"{name} failed the gate"


def _set_id_for(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _candidate(
    slot: Slot,
    image: bytes,
    reference: bytes,
    *,
    references: list[tuple[str, bytes]] | None = None,
    siblings: list[tuple[str, bytes]] | None = None,
) -> CandidateInput:
    """A candidate for the scorer: adherence ranks the slot's label among its kind's labels;
    not-a-copy compares with ``references`` (default: ``reference``) and ``siblings``."""
    template = POSE_TEMPLATE if slot.asset_type is AssetType.POSE else EXPRESSION_TEMPLATE
    return CandidateInput(
        slot.name,
        image,
        reference,
        slot.label,
        slot.label_set,
        template,
        references=tuple(references or ()),
        siblings=tuple(siblings or ()),
    )


def _reference_label(index: int, ref_id: str, anchor_id: str) -> str:
    if ref_id == anchor_id:
        return "primary anchor"
    return f"reference {index + 1} (asset {ref_id})"


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
