"""Scenes (any authenticated user, own scenes only): generate, list, memories."""

from __future__ import annotations

import uuid
import weakref

from fastapi import APIRouter, status

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.consistency import scene_embedder
from avatar_pipeline.scenes.emotion import Message
from avatar_pipeline.scenes.factory import build_scene_writer
from avatar_pipeline.scenes.writer import SceneWriter
from avatar_pipeline.serving.config import Services
from avatar_pipeline.serving.deps import (
    CurrentUser,
    ImageServiceDep,
    ObjectStoreDep,
    ServicesDep,
    SessionDep,
)
from avatar_pipeline.serving.scene_flow import GeneratedScene, SceneRequest, generate_scene
from avatar_pipeline.serving.scene_schemas import SceneFromEpisode, SceneGenerated
from avatar_pipeline.serving.schemas import MemoryUpdate, ScenePublic
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


# One scene writer per ImageService: a language-model writer shares its Replicate client.
_WRITERS: weakref.WeakKeyDictionary[ImageService, SceneWriter] = weakref.WeakKeyDictionary()


def scene_writer_for(services: Services, image_service: ImageService) -> SceneWriter:
    writer = _WRITERS.get(image_service)
    if writer is None:
        writer = build_scene_writer(services.settings, image_service)
        _WRITERS[image_service] = writer
    return writer


def scene_generated(result: GeneratedScene, store: ObjectStore, ttl: int) -> SceneGenerated:
    public = scene_public(result.scene, store, ttl, url=result.url)
    draft, consistency = result.draft, result.consistency
    return SceneGenerated.model_validate(
        {
            **public.model_dump(),
            "consistency_score": result.scene.consistency_score,
            "consistency_verdict": consistency.verdict if consistency else "unmeasured",
            "emotion": draft.emotion if draft else None,
            "expression": draft.expression if draft else None,
            "scene_writer": draft.writer if draft else "unknown",
        }
    )


@router.post("/generate", response_model=SceneGenerated, status_code=status.HTTP_201_CREATED)
async def generate(
    services: ServicesDep,
    user: CurrentUser,
    store: ObjectStoreDep,
    image_service: ImageServiceDep,
    body: SceneFromEpisode,
) -> SceneGenerated:
    """Visualise the latest moment of one of the caller's episodes, in the character's likeness:
    the scene writer reads the conversation (or takes ``moment``/``emotion`` as given)."""
    settings = services.settings
    ttl = settings.signed_url_ttl_seconds
    context = (
        tuple(Message(m.role, m.content) for m in body.context)
        if body.context is not None
        else None
    )
    result = await generate_scene(
        SceneRequest(
            user_id=user.id,
            episode_id=body.episode_id,
            moment=body.moment,
            emotion=body.emotion,
            width=body.width,
            height=body.height,
            context=context,
        ),
        session_factory=services.session_factory,
        store=store,
        image_service=image_service,
        url_ttl_seconds=ttl,
        writer=scene_writer_for(services, image_service),
        embedder=scene_embedder(settings),
        context_limit=settings.scene_context_messages,
    )
    return scene_generated(result, store, ttl)


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
