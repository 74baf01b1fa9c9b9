"""Episode messages (any authenticated user, own episodes only): the conversation scenes are
written from, for hosts that keep it here rather than sending it with each scene request."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from avatar_pipeline.catalog.episode_messages import append_message, recent_messages, users_episode
from avatar_pipeline.serving.deps import CurrentUser, SessionDep
from avatar_pipeline.serving.scene_schemas import MessageCreate, MessagePublic

router = APIRouter(prefix="/episodes", tags=["episodes"])


@router.post(
    "/{episode_id}/messages", response_model=MessagePublic, status_code=status.HTTP_201_CREATED
)
def add_message(
    session: SessionDep, user: CurrentUser, episode_id: uuid.UUID, body: MessageCreate
) -> MessagePublic:
    """Append one turn to one of the caller's episodes."""
    message = append_message(
        session, episode_id=episode_id, user_id=user.id, content=body.content, role=body.role
    )
    return MessagePublic.model_validate(message)


@router.get("/{episode_id}/messages", response_model=list[MessagePublic])
def list_messages(
    session: SessionDep,
    user: CurrentUser,
    episode_id: uuid.UUID,
    limit: int = Query(default=50, ge=1, le=500),
) -> list[MessagePublic]:
    """The last ``limit`` turns of one of the caller's episodes, oldest first."""
    episode = users_episode(session, user.id, episode_id)
    return [
        MessagePublic.model_validate(m) for m in recent_messages(session, episode.id, limit=limit)
    ]
