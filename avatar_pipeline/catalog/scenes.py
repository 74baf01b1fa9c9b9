"""Scene images: a user's generated scenes (and memories) with the kit they used.

A user only sees and changes their own scenes: someone else's scene or episode is reported as
not found, exactly like a missing one.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import as_uuid, check_text, clean_dict, guarded, require
from avatar_pipeline.catalog.errors import (
    ConstraintViolationError,
    InvalidReferenceError,
    NotFoundError,
)
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Episode, SceneImage, User
from avatar_pipeline.storage.keys import validate_path


def _users_episode(session: Session, user_id: uuid.UUID, episode_id: uuid.UUID) -> Episode:
    episode = session.get(Episode, as_uuid(episode_id, "episode"))
    if episode is None or episode.user_id != as_uuid(user_id, "user"):
        raise NotFoundError("episode", episode_id, f"or it is not an episode of user {user_id}")
    return episode


def create_scene_image(
    session: Session,
    *,
    scene_id: uuid.UUID | None = None,
    user_id: uuid.UUID,
    episode_id: uuid.UUID,
    storage_path: str,
    prompt: str,
    avatar_kit_id: uuid.UUID | None = None,
    derived_from_asset_id: uuid.UUID | None = None,
    generation_metadata: dict[str, Any] | None = None,
    consistency_score: float | None = None,
) -> SceneImage:
    """Record a scene already written to the ``scenes`` bucket at ``storage_path``."""
    if consistency_score is not None and not math.isfinite(consistency_score):
        raise ConstraintViolationError(
            f"consistency_score must be a finite number, got {consistency_score!r}",
            constraint="consistency_score_finite",
        )
    user = require(session, User, user_id, "user")
    episode = _users_episode(session, user.id, episode_id)
    validate_path(storage_path)
    if avatar_kit_id is not None:
        avatar_kit_id = require(session, AvatarKit, avatar_kit_id, "avatar kit").id
    if derived_from_asset_id is not None:
        asset = require(session, AvatarAsset, derived_from_asset_id, "avatar asset")
        if avatar_kit_id is not None and asset.avatar_kit_id != avatar_kit_id:
            raise InvalidReferenceError(
                f"derived_from_asset_id {asset.id} belongs to kit {asset.avatar_kit_id}, not to "
                f"the scene's kit {avatar_kit_id}"
            )
        avatar_kit_id = asset.avatar_kit_id
    scene = SceneImage(
        id=scene_id or uuid.uuid4(),
        user_id=user.id,
        episode_id=episode.id,
        storage_bucket="scenes",
        storage_path=storage_path,
        prompt=check_text(prompt, field="prompt"),
        avatar_kit_id=avatar_kit_id,
        derived_from_asset_id=derived_from_asset_id,
        generation_metadata=clean_dict(generation_metadata),
        consistency_score=consistency_score,
    )
    with guarded(session, f"scene {scene.id}"):
        session.add(scene)
    return scene


def get_scene_image(session: Session, *, scene_id: uuid.UUID, user_id: uuid.UUID) -> SceneImage:
    scene = session.get(SceneImage, as_uuid(scene_id, "scene"))
    if scene is None or scene.user_id != as_uuid(user_id, "user"):
        raise NotFoundError("scene", scene_id)
    return scene


def list_episode_scenes(
    session: Session, *, user_id: uuid.UUID, episode_id: uuid.UUID
) -> list[SceneImage]:
    """The user's scenes of one of their episodes, oldest first."""
    episode = _users_episode(session, user_id, episode_id)
    query = (
        select(SceneImage)
        .where(SceneImage.episode_id == episode.id, SceneImage.user_id == episode.user_id)
        .order_by(SceneImage.created_at, SceneImage.id)
    )
    return list(session.scalars(query))


def set_scene_memory(
    session: Session, *, scene_id: uuid.UUID, user_id: uuid.UUID, is_memory: bool
) -> SceneImage:
    scene = get_scene_image(session, scene_id=scene_id, user_id=user_id)
    with guarded(session, f"scene {scene.id}"):
        scene.is_memory = bool(is_memory)
    return scene


def list_memories(session: Session, *, user_id: uuid.UUID) -> list[SceneImage]:
    """The user's scenes saved as memories, newest first."""
    query = (
        select(SceneImage)
        .where(SceneImage.user_id == as_uuid(user_id, "user"), SceneImage.is_memory.is_(True))
        .order_by(SceneImage.created_at.desc(), SceneImage.id)
    )
    return list(session.scalars(query))


def kit_scenes(
    session: Session,
    kit_id: uuid.UUID | str,
    *,
    limit: int = 200,
    since: datetime | None = None,
) -> list[SceneImage]:
    """A kit's scenes (every user's: an admin/pipeline view), newest first."""
    query = select(SceneImage).where(SceneImage.avatar_kit_id == as_uuid(kit_id, "avatar kit"))
    if since is not None:
        query = query.where(SceneImage.created_at >= since)
    query = query.order_by(SceneImage.created_at.desc(), SceneImage.id).limit(max(1, limit))
    return list(session.scalars(query))


def kits_with_scenes(session: Session) -> list[uuid.UUID]:
    """Ids of the kits that have at least one scene."""
    query = select(SceneImage.avatar_kit_id).where(SceneImage.avatar_kit_id.is_not(None))
    return sorted({k for k in session.scalars(query.distinct()) if k is not None}, key=str)
