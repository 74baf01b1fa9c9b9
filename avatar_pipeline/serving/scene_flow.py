"""The spec's Scene Generation Flow, in plain Python (no HTTP here).

episode (the caller's own) -> its recent conversation (``scenes.context``: the local messages
table, or the turns the caller sent) and its character's active kit -> the scene writer
(``scenes.writer``: a language model on Replicate or the offline composer) writes the moment,
detects the emotion and composes the scene prompt with the kit's appearance and style ->
reference image (the expression asset the emotion selects, else the primary anchor) ->
``ImageService.edit()``; a character without a kit, or a kit without a canonical primary
anchor, falls back to ``generate()`` (text-to-image). A kit-based scene drawn from the anchor is
scored against the primary anchor with the gate's scorer (``scenes.consistency``). The image is
stored at ``scenes/{user_id}/{episode_id}/{scene_id}.png`` first and the ``scene_images`` row
inserted second; if the insert fails the object is deleted again. No database transaction is
open while the writer, the provider or the scorer works.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope, write_transaction
from avatar_pipeline.catalog.episode_messages import users_episode as _users_episode
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character, Episode, SceneImage
from avatar_pipeline.consistency.types import Embedder
from avatar_pipeline.domain.prompts import InvalidPromptError, KitPrompts
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import ImageResponse
from avatar_pipeline.scenes.consistency import SceneConsistency, score_scene, unmeasured
from avatar_pipeline.scenes.context import (
    CatalogContextSource,
    ContextSource,
    EpisodeContext,
    RequestContextSource,
)
from avatar_pipeline.scenes.emotion import Message
from avatar_pipeline.scenes.writer import OfflineSceneWriter, SceneBrief, SceneDraft, SceneWriter
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectNotFoundError, ObjectStore, StorageError

logger = logging.getLogger(__name__)

SCENES_BUCKET: Literal["scenes"] = "scenes"
DEFAULT_CONTEXT_MESSAGES = 12


class SceneReferenceMissingError(StorageError):
    """The kit's primary anchor is in the catalog but its image is not in the object store."""


@dataclass(frozen=True)
class SceneRequest:
    user_id: uuid.UUID
    episode_id: uuid.UUID
    moment: str | None = None  # explicit moment; None: the writer composes it
    emotion: str | None = None  # explicit emotion; None: the writer detects it
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    # The conversation sent with the request (a host app's own store); None: the catalog's.
    context: tuple[Message, ...] | None = None


@dataclass(frozen=True)
class Reference:
    asset_id: uuid.UUID
    bucket: str
    path: str
    slot: str


@dataclass(frozen=True)
class SceneInputs:
    """What the catalog says about a scene before anything is written or drawn."""

    context: EpisodeContext
    kit_id: uuid.UUID | None
    kit_prompts: KitPrompts | None
    anchor: Reference | None  # the canonical primary anchor
    expression_assets: dict[str, Reference] = field(default_factory=dict)  # name -> asset
    kit_emotion_tags: dict[str, str] = field(default_factory=dict)  # tag -> expression name
    reason: str = ""


@dataclass(frozen=True)
class ScenePlan:
    """What a scene is drawn from: the kit (if any), the expression, and the references to try
    in order (the chosen expression asset, then the primary anchor); none means text-to-image."""

    kit_id: uuid.UUID | None
    kit_prompts: KitPrompts | None
    expression_name: str | None
    references: tuple[Reference, ...]
    anchor: Reference | None
    reason: str


@dataclass(frozen=True)
class GeneratedScene:
    scene: SceneImage
    url: str
    url_expires_in: int
    draft: SceneDraft | None = None
    consistency: SceneConsistency | None = None


def users_episode(session: Session, user_id: uuid.UUID, episode_id: uuid.UUID) -> Episode:
    """The episode, if it is the user's; someone else's is "not found", like a missing one."""
    return _users_episode(session, user_id, episode_id)


def _reference(asset: AvatarAsset) -> Reference:
    return Reference(asset.id, asset.storage_bucket, asset.storage_path, repo.slot_of(asset))


def gather_inputs(
    session: Session,
    request: SceneRequest,
    *,
    source: ContextSource | None = None,
    context_limit: int = DEFAULT_CONTEXT_MESSAGES,
) -> SceneInputs:
    """Episode (ownership checked), its conversation, the active kit and its canonical images."""
    episode = users_episode(session, request.user_id, request.episode_id)
    if source is None:
        source = (
            RequestContextSource(request.context)
            if request.context is not None
            else CatalogContextSource()
        )
    context = source.fetch(session, episode, limit=context_limit)
    character = session.get(Character, episode.character_id)
    kit_id = character.active_avatar_kit_id if character is not None else None
    kit = session.get(AvatarKit, kit_id) if kit_id is not None else None
    if kit is None or kit.status != "active":  # api_load: a draft kit never serves scenes
        return SceneInputs(context, None, None, None, reason="the character has no active kit")
    canonical = repo.canonical_assets(session, kit.id)
    expressions: dict[str, Reference] = {}
    tags: dict[str, str] = {}
    for slot, asset in sorted(canonical.items()):
        if slot.startswith("expression:") and asset.expression:
            expressions[asset.expression] = _reference(asset)
            for tag in asset.emotion_tags or []:
                tags.setdefault(tag.strip().lower(), asset.expression)
    anchor_asset = canonical.get("anchor_portrait")
    if anchor_asset is None or anchor_asset.id != kit.primary_anchor_id:
        reason = "the kit has no canonical primary anchor yet"
        return SceneInputs(context, kit.id, repo.kit_prompts(kit), None, expressions, tags, reason)
    return SceneInputs(
        context, kit.id, repo.kit_prompts(kit), _reference(anchor_asset), expressions, tags, ""
    )


def plan_from(inputs: SceneInputs, expression_name: str | None) -> ScenePlan:
    """References to try for the chosen expression: its asset, then the primary anchor."""
    if inputs.kit_id is None or inputs.anchor is None:
        return ScenePlan(
            inputs.kit_id, inputs.kit_prompts, expression_name, (), None, inputs.reason
        )
    expression = inputs.expression_assets.get(expression_name) if expression_name else None
    references = tuple(r for r in (expression, inputs.anchor) if r is not None)
    reason = (
        f"expression {expression_name!r} of the kit"
        if expression is not None
        else "the kit's primary anchor"
    )
    return ScenePlan(
        inputs.kit_id, inputs.kit_prompts, expression_name, references, inputs.anchor, reason
    )


def read_reference(store: ObjectStore, plan: ScenePlan) -> tuple[Reference, bytes, list[str]]:
    """The first reference whose image is in the store, and notes on any that were missing."""
    notes: list[str] = []
    for reference in plan.references:
        try:
            return reference, store.get(reference.bucket, reference.path), notes  # type: ignore[arg-type]
        except ObjectNotFoundError:
            logger.warning("reference %s missing at %s", reference.asset_id, reference.path)
            notes.append(f"{reference.slot} image missing at {reference.bucket}/{reference.path}")
    last = plan.references[-1]
    raise SceneReferenceMissingError(
        f"the primary anchor {last.asset_id} of kit {plan.kit_id} is not in the object store at "
        f"{last.bucket}/{last.path}; re-upload it (POST /avatar-kits/{plan.kit_id}/assets) or "
        "regenerate the kit's anchors"
    )


def store_and_record_scene(
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    *,
    request: SceneRequest,
    image: bytes,
    prompt: str,
    kit_id: uuid.UUID | None,
    derived_from_asset_id: uuid.UUID | None,
    generation_metadata: dict[str, Any],
    scene_id: uuid.UUID | None = None,
    consistency_score: float | None = None,
) -> SceneImage:
    """Write the image, then insert its row; if the insert fails, delete the image again."""
    scene_id = scene_id or uuid.uuid4()
    path = keys.scene_path(str(request.user_id), str(request.episode_id), str(scene_id))
    store.put(SCENES_BUCKET, path, image, "image/png")
    try:
        # api_load: a write transaction (SQLite write lock taken up front, retried on a lost race)
        return write_transaction(
            session_factory,
            lambda session: repo.create_scene_image(
                session,
                scene_id=scene_id,
                user_id=request.user_id,
                episode_id=request.episode_id,
                storage_path=path,
                prompt=prompt,
                avatar_kit_id=kit_id,
                derived_from_asset_id=derived_from_asset_id,
                generation_metadata=generation_metadata,
                consistency_score=consistency_score,
            ),
        )
    except BaseException:
        store.delete(SCENES_BUCKET, path)
        raise


def _metadata(
    response: ImageResponse,
    draft: SceneDraft,
    inputs: SceneInputs,
    plan: ScenePlan,
    reference: Reference | None,
    notes: list[str],
    consistency: SceneConsistency,
) -> dict[str, Any]:
    metadata = response.to_metadata()
    metadata.update(
        operation="edit" if reference is not None else "generate",
        moment=draft.moment,
        emotion=draft.emotion,
        emotion_source=draft.emotion_source,
        expression=plan.expression_name,
        reference_asset_ids=[str(reference.asset_id)] if reference is not None else [],
        reference_slot=reference.slot if reference is not None else None,
        reference_reason=plan.reason,
        kit_prompt_hash=plan.kit_prompts.prompt_hash if plan.kit_prompts else None,
        scene_writer=draft.as_metadata(),
        context=inputs.context.as_metadata(),
        consistency=consistency.as_metadata(),
    )
    if notes:
        metadata["fallback_notes"] = notes
    return metadata


def _gather(
    session_factory: sessionmaker[Session], request: SceneRequest, context_limit: int
) -> SceneInputs:
    with session_scope(session_factory, write=False) as session:  # api_load: read-only
        return gather_inputs(session, request, context_limit=context_limit)


def _check_request(request: SceneRequest) -> None:
    if request.moment is not None and not request.moment.strip():
        raise InvalidPromptError("scene moment must not be empty (leave it out to let the "
                                 "scene writer compose it from the episode)")  # fmt: skip


def _anchor_bytes(
    store: ObjectStore, plan: ScenePlan, reference: Reference, reference_bytes: bytes
) -> bytes | None:
    if plan.anchor is None:
        return None
    if reference.asset_id == plan.anchor.asset_id:
        return reference_bytes
    try:
        return store.get(plan.anchor.bucket, plan.anchor.path)  # type: ignore[arg-type]
    except ObjectNotFoundError:
        return None


def _score(
    embedder: Embedder | None, anchor: bytes | None, image: bytes, reference: bytes | None
) -> SceneConsistency:
    if embedder is None:
        return unmeasured("no scorer was configured for this scene flow")
    if anchor is None:
        return unmeasured("the kit's primary anchor image is not in the object store")
    return score_scene(embedder, anchor=anchor, scene=image, reference=reference)


async def generate_scene(
    request: SceneRequest,
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    image_service: ImageService,
    url_ttl_seconds: int,
    writer: SceneWriter | None = None,
    embedder: Embedder | None = None,
    context_limit: int = DEFAULT_CONTEXT_MESSAGES,
) -> GeneratedScene:
    """Run the whole flow; no database transaction is open while the writer, the provider or
    the scorer works. ``embedder`` scores kit-based scenes (None: recorded as unmeasured)."""
    _check_request(request)
    inputs = await asyncio.to_thread(_gather, session_factory, request, context_limit)
    if not request.moment and not inputs.context.messages:
        raise InvalidPromptError(
            f"episode {request.episode_id} has no messages to write a scene from: send a "
            "'moment', or the conversation ('context'), or append messages first "
            f"(POST /episodes/{request.episode_id}/messages)"
        )
    brief = SceneBrief(
        character_name=inputs.context.character_name,
        kit_prompts=inputs.kit_prompts,
        messages=inputs.context.messages,
        moment=request.moment,
        emotion=request.emotion,
        kit_emotion_tags=inputs.kit_emotion_tags,
    )
    draft = await (writer or OfflineSceneWriter()).write(brief)
    plan = plan_from(inputs, draft.expression)
    negative = plan.kit_prompts.negative_prompt if plan.kit_prompts else None
    reference: Reference | None = None
    notes: list[str] = []
    if plan.references:
        reference, reference_bytes, notes = await asyncio.to_thread(read_reference, store, plan)
        response = await image_service.edit(
            prompt=draft.prompt,
            reference_images=[reference_bytes],
            negative_prompt=negative,
            width=request.width,
            height=request.height,
            seed=request.seed,
        )
        anchor = await asyncio.to_thread(_anchor_bytes, store, plan, reference, reference_bytes)
        consistency = await asyncio.to_thread(
            _score, embedder, anchor, response.image, reference_bytes
        )
    else:
        response = await image_service.generate(
            draft.prompt, negative, request.width, request.height, seed=request.seed
        )
        consistency = unmeasured(
            plan.reason if plan.kit_id is not None else "no kit: nothing to be consistent with"
        )
    # One worker thread does put + insert + cleanup, so a cancelled request cannot interleave.
    scene = await asyncio.to_thread(
        store_and_record_scene,
        session_factory,
        store,
        request=request,
        image=response.image,
        prompt=draft.prompt,
        kit_id=plan.kit_id,
        derived_from_asset_id=reference.asset_id if reference is not None else None,
        generation_metadata=_metadata(response, draft, inputs, plan, reference, notes, consistency),
        consistency_score=consistency.score,
    )
    url = await asyncio.to_thread(
        store.signed_url, SCENES_BUCKET, scene.storage_path, url_ttl_seconds
    )
    return GeneratedScene(scene, url, url_ttl_seconds, draft, consistency)
