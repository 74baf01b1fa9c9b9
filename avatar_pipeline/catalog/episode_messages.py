"""Episode messages: the conversation of an episode, which the scene writer reads.

Production episodes belong to the host app; this table is the local stand-in that the CLI, the
demo and the API (``POST /episodes/{id}/messages``) write. Only the episode's user may append or
read: someone else's episode is "not found", like a missing one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog._support import as_uuid, check_choice, check_text, guarded
from avatar_pipeline.catalog.errors import ConstraintViolationError, NotFoundError
from avatar_pipeline.catalog.models import MESSAGE_ROLES, Episode, EpisodeMessage

MAX_MESSAGE_CHARS = 4000


def users_episode(
    session: Session, user_id: uuid.UUID | str, episode_id: uuid.UUID | str
) -> Episode:
    """The episode if it is the user's; else NotFoundError (someone else's looks missing)."""
    episode = session.get(Episode, as_uuid(episode_id, "episode"))
    if episode is None or episode.user_id != as_uuid(user_id, "user"):
        raise NotFoundError("episode", episode_id, "or it is not one of your episodes")
    return episode


def append_message(
    session: Session,
    *,
    episode_id: uuid.UUID | str,
    user_id: uuid.UUID | str,
    content: str,
    role: str = "user",
    created_at: datetime | None = None,
) -> EpisodeMessage:
    """Append one turn to the user's episode."""
    episode = users_episode(session, user_id, episode_id)
    check_choice(role, MESSAGE_ROLES, field="role", constraint="ck_episode_messages_role")
    text = check_text(content, field="content")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ConstraintViolationError(
            f"content is {len(text)} characters; the limit is {MAX_MESSAGE_CHARS}",
            constraint="content_length",
        )
    message = EpisodeMessage(episode_id=episode.id, role=role, content=text)
    if created_at is not None:
        message.created_at = created_at
    with guarded(session, f"message of episode {episode.id}"):
        session.add(message)
    return message


def recent_messages(
    session: Session, episode_id: uuid.UUID | str, *, limit: int = 12
) -> list[EpisodeMessage]:
    """The episode's last ``limit`` messages, oldest first (no ownership check: callers
    resolve the episode with :func:`users_episode` first)."""
    query = (
        select(EpisodeMessage)
        .where(EpisodeMessage.episode_id == as_uuid(episode_id, "episode"))
        .order_by(EpisodeMessage.created_at.desc(), EpisodeMessage.id.desc())
        .limit(max(1, limit))
    )
    return list(reversed(list(session.scalars(query))))
