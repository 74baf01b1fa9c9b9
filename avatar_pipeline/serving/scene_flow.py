"""The spec's Scene Generation Flow, in plain Python (no HTTP here).

episode (the caller's own) -> its character's active kit -> reference image (the expression
asset chosen by the emotion, else the primary anchor) -> ``ImageService.edit()``; a character
without a kit, or a kit without a canonical primary anchor, falls back to ``generate()``
(text-to-image). The image is stored at ``scenes/{user_id}/{episode_id}/{scene_id}.png`` first
and the ``scene_images`` row inserted second; if the insert fails the object is deleted again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import NotFoundError
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character, Episode, SceneImage
from avatar_pipeline.domain.prompts import KitPrompts, scene_prompt
from avatar_pipeline.domain.vocab import EXPRESSIONS_BY_NAME, ExpressionDef, expression_for_emotion
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import ImageResponse
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectNotFoundError, ObjectStore, StorageError

logger = logging.getLogger(__name__)

SCENES_BUCKET: Literal["scenes"] = "scenes"


class SceneReferenceMissingError(StorageError):
    """The kit's primary anchor is in the catalog but its image is not in the object store."""


@dataclass(frozen=True)
class SceneRequest:
    user_id: uuid.UUID
    episode_id: uuid.UUID
    moment: str
    emotion: str | None = None
    width: int = 1024
    height: int = 1024
    seed: int | None = None


@dataclass(frozen=True)
class Reference:
    asset_id: uuid.UUID
    bucket: str
    path: str
    slot: str


@dataclass(frozen=True)
class ScenePlan:
    """What a scene is drawn from: the kit (if any), the expression, and the references to try
    in order (the chosen expression asset, then the primary anchor); none means text-to-image."""

    kit_id: uuid.UUID | None
    kit_prompts: KitPrompts | None
    expression: ExpressionDef | None
    expression_name: str | None
    references: tuple[Reference, ...]
    reason: str


@dataclass(frozen=True)
class GeneratedScene:
    scene: SceneImage
    url: str
    url_expires_in: int


def users_episode(session: Session, user_id: uuid.UUID, episode_id: uuid.UUID) -> Episode:
    """The episode, if it is the user's; someone else's is "not found", like a missing one."""
    episode = session.get(Episode, episode_id)
    if episode is None or episode.user_id != user_id:
        raise NotFoundError("episode", episode_id, "or it is not one of your episodes")
    return episode


def _reference(asset: AvatarAsset) -> Reference:
    return Reference(asset.id, asset.storage_bucket, asset.storage_path, repo.slot_of(asset))


def _expression_asset(
    canonical: dict[str, AvatarAsset], emotion: str, expression_name: str
) -> AvatarAsset | None:
    """An expression asset tagged with the emotion itself (the spec's ``emotion_tags``) wins;
    else the canonical asset of the expression the vocabulary maps the emotion to."""
    needle = emotion.strip().lower()
    for slot, asset in sorted(canonical.items()):
        tags = [t.strip().lower() for t in asset.emotion_tags or []]
        if slot.startswith("expression:") and needle in tags:
            return asset
    return canonical.get(f"expression:{expression_name}")


def plan_scene(session: Session, request: SceneRequest) -> ScenePlan:
    """Decide the kit, expression and reference images for a scene (reads only)."""
    episode = users_episode(session, request.user_id, request.episode_id)
    character = session.get(Character, episode.character_id)
    kit_id = character.active_avatar_kit_id if character is not None else None
    kit = session.get(AvatarKit, kit_id) if kit_id is not None else None
    if kit is None or kit.status == "archived":
        return ScenePlan(None, None, None, None, (), "the character has no active avatar kit")

    prompts = repo.kit_prompts(kit)
    canonical = repo.canonical_assets(session, kit.id)
    expression_name: str | None = None
    expression_asset: AvatarAsset | None = None
    if request.emotion and request.emotion.strip():
        expression_name = expression_for_emotion(request.emotion)
        expression_asset = _expression_asset(canonical, request.emotion, expression_name)
        if expression_asset is not None:
            expression_name = expression_asset.expression
    expression = EXPRESSIONS_BY_NAME.get(expression_name) if expression_name else None

    anchor = canonical.get("anchor_portrait")
    if anchor is None or anchor.id != kit.primary_anchor_id:
        # Without an anchor nothing pins the face: text-to-image from the kit's prompts.
        reason = "the kit has no canonical primary anchor yet"
        return ScenePlan(kit.id, prompts, expression, expression_name, (), reason)
    references = tuple(_reference(a) for a in (expression_asset, anchor) if a is not None)
    reason = (
        f"expression {expression_name!r} of the kit"
        if expression_asset is not None
        else "the kit's primary anchor"
    )
    return ScenePlan(kit.id, prompts, expression, expression_name, references, reason)


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
) -> SceneImage:
    """Write the image, then insert its row; if the insert fails, delete the image again."""
    scene_id = scene_id or uuid.uuid4()
    path = keys.scene_path(str(request.user_id), str(request.episode_id), str(scene_id))
    store.put(SCENES_BUCKET, path, image, "image/png")
    try:
        with session_scope(session_factory) as session:
            return repo.create_scene_image(
                session,
                scene_id=scene_id,
                user_id=request.user_id,
                episode_id=request.episode_id,
                storage_path=path,
                prompt=prompt,
                avatar_kit_id=kit_id,
                derived_from_asset_id=derived_from_asset_id,
                generation_metadata=generation_metadata,
            )
    except BaseException:
        store.delete(SCENES_BUCKET, path)
        raise


def _metadata(
    response: ImageResponse,
    request: SceneRequest,
    plan: ScenePlan,
    reference: Reference | None,
    notes: list[str],
) -> dict[str, Any]:
    metadata = response.to_metadata()
    metadata.update(
        operation="edit" if reference is not None else "generate",
        moment=request.moment,
        emotion=request.emotion,
        expression=plan.expression_name,
        reference_asset_ids=[str(reference.asset_id)] if reference is not None else [],
        reference_slot=reference.slot if reference is not None else None,
        reference_reason=plan.reason,
        kit_prompt_hash=plan.kit_prompts.prompt_hash if plan.kit_prompts else None,
    )
    if notes:
        metadata["fallback_notes"] = notes
    return metadata


def _plan(session_factory: sessionmaker[Session], request: SceneRequest) -> ScenePlan:
    with session_scope(session_factory) as session:
        return plan_scene(session, request)


async def generate_scene(
    request: SceneRequest,
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    image_service: ImageService,
    url_ttl_seconds: int,
) -> GeneratedScene:
    """Run the whole flow; no database transaction is open while the provider works."""
    scene_prompt(None, request.moment, None)  # an empty moment fails before any lookup
    plan = await asyncio.to_thread(_plan, session_factory, request)
    prompt = scene_prompt(plan.kit_prompts, request.moment, plan.expression)
    negative = plan.kit_prompts.negative_prompt if plan.kit_prompts else None
    reference: Reference | None = None
    notes: list[str] = []
    if plan.references:
        reference, reference_bytes, notes = await asyncio.to_thread(read_reference, store, plan)
        response = await image_service.edit(
            prompt=prompt,
            reference_images=[reference_bytes],
            negative_prompt=negative,
            width=request.width,
            height=request.height,
            seed=request.seed,
        )
    else:
        response = await image_service.generate(
            prompt, negative, request.width, request.height, seed=request.seed
        )
    # One worker thread does put + insert + cleanup, so a cancelled request cannot interleave.
    scene = await asyncio.to_thread(
        store_and_record_scene,
        session_factory,
        store,
        request=request,
        image=response.image,
        prompt=prompt,
        kit_id=plan.kit_id,
        derived_from_asset_id=reference.asset_id if reference is not None else None,
        generation_metadata=_metadata(response, request, plan, reference, notes),
    )
    url = await asyncio.to_thread(
        store.signed_url, SCENES_BUCKET, scene.storage_path, url_ttl_seconds
    )
    return GeneratedScene(scene=scene, url=url, url_expires_in=url_ttl_seconds)
