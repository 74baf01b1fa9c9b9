"""Request and response bodies of the scene flow (scene generation from an episode, episode
messages, scene drift)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from avatar_pipeline.catalog.episode_messages import MAX_MESSAGE_CHARS
from avatar_pipeline.serving.schemas import ScenePublic


class ContextMessage(BaseModel):
    """One turn of the conversation, as a host app that keeps its own episodes sends it."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"] = Field(
        description="'assistant' is the character speaking; 'user' is the person."
    )
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class SceneFromEpisode(BaseModel):
    """Visualise the latest moment of an episode. Everything but ``episode_id`` is optional:
    the scene writer reads the episode's recent messages (or ``context``), writes the moment
    and detects the emotion; an explicit ``moment`` or ``emotion`` wins over the writer's."""

    model_config = ConfigDict(extra="forbid")

    episode_id: uuid.UUID
    moment: str | None = Field(
        default=None,
        min_length=1,
        max_length=1500,
        description="What happens in this moment; left out, the scene writer composes it.",
    )
    emotion: str | None = Field(
        default=None,
        max_length=64,
        description="The character's emotion (e.g. 'joy'); left out, it is detected.",
    )
    context: list[ContextMessage] | None = Field(
        default=None,
        max_length=50,
        description="The recent conversation, oldest first, when the host app owns it; "
        "left out, the episode's stored messages are read.",
    )
    width: int = Field(default=1024, ge=256, le=2048, multiple_of=16)
    height: int = Field(default=1024, ge=256, le=2048, multiple_of=16)


class SceneGenerated(ScenePublic):
    """The new scene, with what the scene writer decided and how consistent it came out."""

    consistency_score: float | None = Field(
        description="Identity vs the kit's primary anchor (the gate's scorer); null when not "
        "measured (no kit, no anchor, or the scorer failed: see generation_metadata)."
    )
    consistency_verdict: Literal["pass", "fail", "unmeasured"]
    emotion: str | None
    expression: str | None
    scene_writer: str


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"] = "user"
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    episode_id: uuid.UUID
    role: str
    content: str
    created_at: datetime
