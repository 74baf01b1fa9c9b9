"""Request and response bodies of the API (pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

KitStatusName = Literal["draft", "active", "archived"]
AssetTypeName = Literal["anchor_portrait", "anchor_fullbody", "expression", "pose", "outfit"]
SLOT_NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"


class Message(BaseModel):
    message: str


class Health(BaseModel):
    """What a liveness/readiness probe needs, nothing about where things live."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    object_store: Literal["ok", "unreachable"]


# --- errors ----------------------------------------------------------------------------------


class NotReadyDetail(BaseModel):
    """409 of an approval: what is wrong and which slots still need a canonical image."""

    message: str
    missing_slots: list[str]


class ValidationIssue(BaseModel):
    """One problem of a request that does not fit the schema (pydantic's error entry)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: ``detail`` says what went wrong and what to do; ``error`` names the
    error class where the app raised a domain error."""

    detail: str | NotReadyDetail | list[ValidationIssue]
    error: str | None = None


# --- kits ------------------------------------------------------------------------------------


class KitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    appearance_prompt: str = Field(min_length=1, max_length=2000)
    style_prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str | None = Field(default=None, max_length=2000)
    character_id: uuid.UUID | None = None
    is_default: StrictBool = False


class KitUpdate(BaseModel):
    """Only the fields sent change. ``status='active'`` follows the approval rules."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    appearance_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    style_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    negative_prompt: str | None = Field(default=None, max_length=2000)
    status: KitStatusName | None = None
    is_default: StrictBool | None = None


class KitPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    character_id: uuid.UUID | None
    created_by: uuid.UUID | None
    name: str
    description: str | None
    appearance_prompt: str
    style_prompt: str
    negative_prompt: str | None
    primary_anchor_id: uuid.UUID | None
    secondary_anchor_id: uuid.UUID | None
    status: KitStatusName
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AnchorChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID


class GenerationRequestPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    avatar_kit_id: uuid.UUID
    requested_by: uuid.UUID | None
    scope: str
    slots: list[str] | None
    status: str
    created_at: datetime


class GenerationRequestCreate(BaseModel):
    """Optionally narrow the request to named slots (``expression:happy``)."""

    model_config = ConfigDict(extra="forbid")

    slots: list[str] | None = Field(default=None, max_length=64)


# --- assets ----------------------------------------------------------------------------------


class AssetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    avatar_kit_id: uuid.UUID
    asset_type: AssetTypeName
    expression: str | None
    pose: str | None
    emotion_tags: list[str] | None
    storage_bucket: str
    storage_path: str
    source_type: str
    derived_from_id: uuid.UUID | None
    generation_metadata: dict[str, Any]
    mime_type: str | None
    width: int | None
    height: int | None
    file_size_bytes: int | None
    is_canonical: bool
    is_active: bool
    created_at: datetime
    url: str = Field(description="Signed, expiring URL of the image.")


class AssetUploaded(BaseModel):
    asset: AssetPublic
    became_canonical: bool = Field(
        description="True when the upload became its slot's canonical asset (the slot had none)."
    )
    became_anchor: Literal["primary", "secondary"] | None = Field(
        description="Set when the upload became the kit's primary/secondary anchor."
    )
    message: str


class AssetUpdate(BaseModel):
    """Only the fields sent change. ``is_canonical=true`` promotes the asset in its slot."""

    model_config = ConfigDict(extra="forbid")

    expression: str | None = Field(default=None, pattern=SLOT_NAME_PATTERN)
    pose: str | None = Field(default=None, pattern=SLOT_NAME_PATTERN)
    emotion_tags: list[str] | None = Field(default=None, max_length=32)
    is_active: StrictBool | None = None
    is_canonical: Literal[True] | None = None


# --- characters ------------------------------------------------------------------------------


class CharacterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    active_avatar_kit_id: uuid.UUID | None


class ActiveKitChoice(BaseModel):
    """``null`` clears the active kit (scenes fall back to text-to-image)."""

    model_config = ConfigDict(extra="forbid")

    avatar_kit_id: uuid.UUID | None


# --- scenes ----------------------------------------------------------------------------------


class SceneGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode_id: uuid.UUID
    moment: str = Field(
        min_length=1,
        max_length=1500,
        description="The scene prompt: what happens in this moment of the episode.",
    )
    emotion: str | None = Field(
        default=None,
        max_length=64,
        description="The detected emotion (e.g. 'joy'); selects the kit's expression.",
    )
    width: int = Field(default=1024, ge=256, le=2048, multiple_of=16)
    height: int = Field(default=1024, ge=256, le=2048, multiple_of=16)


class ScenePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    episode_id: uuid.UUID
    avatar_kit_id: uuid.UUID | None
    derived_from_asset_id: uuid.UUID | None
    prompt: str
    is_memory: bool
    storage_bucket: str
    storage_path: str
    generation_metadata: dict[str, Any]
    created_at: datetime
    url: str = Field(description="Signed URL; it expires after url_expires_in seconds.")
    url_expires_in: int


class MemoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_memory: StrictBool
