"""Scenes (any authenticated user, own scenes only): generate, list, memories."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline.serving.deps import (
    CurrentUser,
    ImageServiceDep,
    ObjectStoreDep,
    ServicesDep,
    SessionDep,
)
from avatar_pipeline.serving.scene_flow import SceneRequest, generate_scene
from avatar_pipeline.serving.schemas import MemoryUpdate, SceneGenerate, ScenePublic
from avatar_pipeline.storage.base import ObjectStore

router = APIRouter(prefix="/scenes", tags=["scenes"])


def scene_public(
    scene: SceneImage, store: ObjectStore, ttl: int, url: str | None = None
) -> ScenePublic:
    columns = {
        name: getattr(scene, name)
        for name in ScenePublic.model_fields
        if name not in ("url", "url_expires_in")
    }
    url = url or store.signed_url("scenes", scene.storage_path, ttl)
    return ScenePublic.model_validate({**columns, "url": url, "url_expires_in": ttl})


@router.post("/generate", response_model=ScenePublic, status_code=status.HTTP_201_CREATED)
async def generate(
    services: ServicesDep,
    user: CurrentUser,
    store: ObjectStoreDep,
    image_service: ImageServiceDep,
    body: SceneGenerate,
) -> ScenePublic:
    """Visualise a moment of one of the caller's episodes, in the character's likeness."""
    ttl = services.settings.signed_url_ttl_seconds
    result = await generate_scene(
        SceneRequest(
            user_id=user.id,
            episode_id=body.episode_id,
            moment=body.moment,
            emotion=body.emotion,
            width=body.width,
            height=body.height,
        ),
        session_factory=services.session_factory,
        store=store,
        image_service=image_service,
        url_ttl_seconds=ttl,
    )
    return scene_public(result.scene, store, ttl, url=result.url)


@router.get("/episode/{episode_id}", response_model=list[ScenePublic])
def list_episode_scenes(
    session: SessionDep,
    services: ServicesDep,
    user: CurrentUser,
    store: ObjectStoreDep,
    episode_id: uuid.UUID,
) -> list[ScenePublic]:
    """The caller's scenes of one of their episodes, oldest first, with signed URLs."""
    ttl = services.settings.signed_url_ttl_seconds
    scenes = repo.list_episode_scenes(session, user_id=user.id, episode_id=episode_id)
    return [scene_public(s, store, ttl) for s in scenes]


@router.patch("/{scene_id}/memory", response_model=ScenePublic)
def set_memory(
    session: SessionDep,
    services: ServicesDep,
    user: CurrentUser,
    store: ObjectStoreDep,
    scene_id: uuid.UUID,
    body: MemoryUpdate,
) -> ScenePublic:
    """Save the scene as a memory (or un-save it); only the caller's own scenes."""
    scene = repo.set_scene_memory(
        session, scene_id=scene_id, user_id=user.id, is_memory=body.is_memory
    )
    return scene_public(scene, store, services.settings.signed_url_ttl_seconds)


@router.get("/memories", response_model=list[ScenePublic])
def list_memories(
    session: SessionDep, services: ServicesDep, user: CurrentUser, store: ObjectStoreDep
) -> list[ScenePublic]:
    """The caller's saved memories, newest first."""
    ttl = services.settings.signed_url_ttl_seconds
    return [scene_public(s, store, ttl) for s in repo.list_memories(session, user_id=user.id)]
