"""Episode context: the recent conversation a scene is written from.

The host app owns episodes in production, so where the conversation comes from is a seam
(:class:`ContextSource`): :class:`CatalogContextSource` reads the local ``episode_messages``
table (the CLI, the demo, ``POST /episodes/{id}/messages``); :class:`RequestContextSource` uses
the turns the caller sent with ``POST /scenes/generate`` (a host app that keeps its own
conversation store). Either way the scene flow sees the same :class:`EpisodeContext`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from avatar_pipeline.catalog.episode_messages import recent_messages
from avatar_pipeline.catalog.models import Character, Episode
from avatar_pipeline.scenes.emotion import Message


@dataclass(frozen=True)
class EpisodeContext:
    """What the scene writer reads: who the character is and the recent turns, oldest first."""

    episode_id: uuid.UUID
    character_name: str | None
    messages: tuple[Message, ...]
    source: str  # "catalog" | "request"
    message_ids: tuple[str, ...] = ()

    def as_metadata(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "messages": len(self.messages),
            "message_ids": list(self.message_ids),
        }


class ContextSource(Protocol):
    """Where an episode's recent conversation comes from."""

    name: str

    def fetch(self, session: Session, episode: Episode, *, limit: int) -> EpisodeContext: ...


def _character_name(session: Session, episode: Episode) -> str | None:
    character = session.get(Character, episode.character_id)
    return character.name if character is not None else None


class CatalogContextSource:
    """The local ``episode_messages`` table."""

    name = "catalog"

    def fetch(self, session: Session, episode: Episode, *, limit: int) -> EpisodeContext:
        rows = recent_messages(session, episode.id, limit=limit)
        return EpisodeContext(
            episode_id=episode.id,
            character_name=_character_name(session, episode),
            messages=tuple(Message(r.role, r.content) for r in rows),
            source=self.name,
            message_ids=tuple(str(r.id) for r in rows),
        )


class RequestContextSource:
    """Turns the caller sent with the request (the host app's own conversation store)."""

    name = "request"

    def __init__(self, messages: Sequence[Message]) -> None:
        self.messages = tuple(messages)

    def fetch(self, session: Session, episode: Episode, *, limit: int) -> EpisodeContext:
        return EpisodeContext(
            episode_id=episode.id,
            character_name=_character_name(session, episode),
            messages=self.messages[-limit:],
            source=self.name,
        )
