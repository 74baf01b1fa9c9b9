"""SQLAlchemy models of the spec's data model, identical on SQLite and PostgreSQL.

Tables from the spec: ``characters`` (+ ``active_avatar_kit_id``), ``avatar_kits``,
``avatar_assets``, ``scene_images`` (renamed from ``episode_images``), ``image_assets``; and the
minimal tables the spec assumes: ``users`` (stands in for ``auth.users``) and ``episodes``.

Additions beyond the spec, kept small:

- ``avatar_assets.pose``: the pose name of a pose asset (the spec only has ``expression``).
- ``kit_generation_requests``: the API writes one to ask for (re-)generation of a kit or some
  of its slots; a Dagster sensor picks pending ones up.
- References the spec leaves as plain ``REFERENCES`` that would otherwise block a hard delete
  (anchor pointers, ``active_avatar_kit_id``, ``derived_from_id``, the scene's kit/asset, the
  creator) are ``ON DELETE SET NULL``; kits are archived, not deleted, in normal operation.
- Flags (``is_default``, ``is_canonical``, ``is_active``, ``is_memory``) and
  ``generation_metadata`` are ``NOT NULL`` with their spec defaults, so readers never see NULL.

Timestamps are always timezone-aware UTC when read, on both databases (``UTCDateTime``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    MetaData,
    Text,
    TypeDecorator,
    Uuid,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

KIT_STATUSES = ("draft", "active", "archived")
ASSET_TYPES = ("anchor_portrait", "anchor_fullbody", "expression", "pose", "outfit")
SOURCE_TYPES = ("manual_upload", "ai_generated", "imported")
USER_ROLES = ("admin", "user")
GENERATION_SCOPES = ("kit", "anchors", "expressions", "poses")
GENERATION_STATUSES = ("pending", "picked", "done", "failed")
MESSAGE_ROLES = ("user", "assistant")
REVIEW_DECISIONS = ("accepted", "rejected", "approved_kit", "archived_kit")
REVIEW_STATES = ("pending", "rejected", "accepted")

IMAGE_ASSETS_COMMENT = (
    "Generic image assets (backgrounds, props, world elements). "
    "For character visuals, use avatar_assets."
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_list(column: str, values: tuple[str, ...]) -> str:
    """SQL text of ``column IN ('a', 'b')`` for a CHECK constraint."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMPTZ`` on PostgreSQL; on SQLite stored as UTC text and read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_document() -> Any:
    """JSONB on PostgreSQL, JSON elsewhere; in-place changes to the dict are tracked."""
    return MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql"))


def text_list() -> Any:
    """``TEXT[]`` on PostgreSQL, a JSON list on SQLite; read back as a list on both."""
    return MutableList.as_mutable(JSON().with_variant(ARRAY(Text()), "postgresql"))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {uuid.UUID: Uuid(), datetime: UTCDateTime(), str: Text()}


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow, server_default=func.now())


class User(Base):
    """Stands in for ``auth.users``: who owns scenes and who created kits."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(in_list("role", USER_ROLES), name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(unique=True)
    role: Mapped[str] = mapped_column(default="user", server_default="user")
    created_at: Mapped[datetime] = _created_at()


class Character(Base):
    """Narrative identity (who); ``active_avatar_kit_id`` points at its visual identity."""

    __tablename__ = "characters"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str]
    description: Mapped[str | None]
    avatar_url: Mapped[str | None]  # legacy single static image; see catalog.legacy
    created_at: Mapped[datetime] = _created_at()
    active_avatar_kit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="SET NULL", use_alter=True)
    )

    active_avatar_kit: Mapped[AvatarKit | None] = relationship(
        foreign_keys=[active_avatar_kit_id], viewonly=True
    )


class Episode(Base):
    __tablename__ = "episodes"
    __table_args__ = (Index("idx_episodes_user", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    character_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str]
    created_at: Mapped[datetime] = _created_at()


class EpisodeMessage(Base):
    """Addition (scene flow): one turn of an episode's conversation, which scenes are written
    from. The host app owns episodes in production; this table is the local stand-in."""

    __tablename__ = "episode_messages"
    __table_args__ = (
        CheckConstraint(in_list("role", MESSAGE_ROLES), name="role"),
        Index("idx_episode_messages_episode", "episode_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    role: Mapped[str]
    content: Mapped[str]
    created_at: Mapped[datetime] = _created_at()


class AvatarKit(Base):
    """The visual identity contract: prompts, anchor pointers, status (the model sheet)."""

    __tablename__ = "avatar_kits"
    __table_args__ = (
        CheckConstraint(in_list("status", KIT_STATUSES), name="status"),
        Index("idx_avatar_kits_character", "character_id"),
        Index(
            "idx_avatar_kits_status",
            "status",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "idx_avatar_kits_default",
            "character_id",
            unique=True,
            sqlite_where=text("is_default = TRUE"),
            postgresql_where=text("is_default = TRUE"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    character_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    name: Mapped[str]
    description: Mapped[str | None]
    appearance_prompt: Mapped[str]
    style_prompt: Mapped[str]
    negative_prompt: Mapped[str | None]
    primary_anchor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_assets.id", ondelete="SET NULL", use_alter=True)
    )
    secondary_anchor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_assets.id", ondelete="SET NULL", use_alter=True)
    )
    status: Mapped[str] = mapped_column(default="draft", server_default="draft")
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    # the model sheet's colour callouts (consistency.palette), from the primary anchor
    palette_contract: Mapped[dict[str, Any] | None] = mapped_column(json_document(), nullable=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    character: Mapped[Character | None] = relationship(foreign_keys=[character_id])
    assets: Mapped[list[AvatarAsset]] = relationship(
        back_populates="kit",
        foreign_keys="AvatarAsset.avatar_kit_id",
        passive_deletes=True,
        order_by="AvatarAsset.created_at",
    )
    primary_anchor: Mapped[AvatarAsset | None] = relationship(
        foreign_keys=[primary_anchor_id], viewonly=True
    )
    secondary_anchor: Mapped[AvatarAsset | None] = relationship(
        foreign_keys=[secondary_anchor_id], viewonly=True
    )


class AvatarAsset(Base):
    """A canonical image of a kit (anchor, expression, pose, outfit); ``pose`` is an addition."""

    __tablename__ = "avatar_assets"
    __table_args__ = (
        CheckConstraint(in_list("asset_type", ASSET_TYPES), name="asset_type"),
        CheckConstraint(in_list("source_type", SOURCE_TYPES), name="source_type"),
        CheckConstraint(in_list("review_state", REVIEW_STATES), name="review_state"),
        Index("idx_avatar_assets_kit", "avatar_kit_id"),
        Index("idx_avatar_assets_type", "asset_type"),
        Index(
            "idx_avatar_assets_expression",
            "expression",
            sqlite_where=text("expression IS NOT NULL"),
            postgresql_where=text("expression IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    avatar_kit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="CASCADE")
    )
    asset_type: Mapped[str]
    expression: Mapped[str | None]
    pose: Mapped[str | None]
    emotion_tags: Mapped[list[str] | None] = mapped_column(text_list())
    storage_bucket: Mapped[str] = mapped_column(default="avatars", server_default="avatars")
    storage_path: Mapped[str]
    source_type: Mapped[str]
    derived_from_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_assets.id", ondelete="SET NULL")
    )
    generation_metadata: Mapped[dict[str, Any]] = mapped_column(
        json_document(), default=dict, server_default=text("'{}'")
    )
    mime_type: Mapped[str | None] = mapped_column(default="image/png", server_default="image/png")
    width: Mapped[int | None]
    height: Mapped[int | None]
    file_size_bytes: Mapped[int | None]
    is_canonical: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # NULL = nothing pending; 'pending' = a non-canonical candidate waiting for a person
    review_state: Mapped[str | None]
    created_at: Mapped[datetime] = _created_at()

    kit: Mapped[AvatarKit] = relationship(back_populates="assets", foreign_keys=[avatar_kit_id])


class SceneImage(Base):
    """A user's generated scene (renamed from ``episode_images``), with the kit it used."""

    __tablename__ = "scene_images"
    __table_args__ = (
        Index("idx_scene_images_user", "user_id"),
        Index("idx_scene_images_episode", "episode_id"),
        Index("idx_scene_images_avatar_kit", "avatar_kit_id"),
        Index("idx_scene_images_kit_created", "avatar_kit_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    episode_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    storage_bucket: Mapped[str] = mapped_column(default="scenes", server_default="scenes")
    storage_path: Mapped[str]
    prompt: Mapped[str]
    is_memory: Mapped[bool] = mapped_column(default=False, server_default=false())
    generation_metadata: Mapped[dict[str, Any]] = mapped_column(
        json_document(), default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = _created_at()
    avatar_kit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="SET NULL")
    )
    derived_from_asset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_assets.id", ondelete="SET NULL")
    )
    # Addition (scene flow): identity of the scene vs its kit's primary anchor (the gate's
    # scorer); NULL when not measured. Details in generation_metadata["consistency"].
    consistency_score: Mapped[float | None]


class ImageAsset(Base):
    """Generic, non-character images (backgrounds, props, world elements)."""

    __tablename__ = "image_assets"
    __table_args__ = {"comment": IMAGE_ASSETS_COMMENT}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str]  # background / prop / world
    storage_bucket: Mapped[str]
    storage_path: Mapped[str]
    created_at: Mapped[datetime] = _created_at()


class KitGenerationRequest(Base):
    """Addition: a request (from the API) to (re-)generate a kit or some of its slots.

    ``scope`` is the part to generate; ``slots`` optionally narrows it to slot names such as
    ``expression:happy``. A Dagster sensor moves it pending -> picked -> done/failed.
    """

    __tablename__ = "kit_generation_requests"
    __table_args__ = (
        CheckConstraint(in_list("scope", GENERATION_SCOPES), name="scope"),
        CheckConstraint(in_list("status", GENERATION_STATUSES), name="status"),
        Index("idx_kit_generation_requests_status", "status"),
        Index("idx_kit_generation_requests_kit", "avatar_kit_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    avatar_kit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="CASCADE")
    )
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    scope: Mapped[str] = mapped_column(default="kit", server_default="kit")
    slots: Mapped[list[str] | None] = mapped_column(MutableList.as_mutable(JSON()))
    status: Mapped[str] = mapped_column(default="pending", server_default="pending")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # studio (0005): a new take (new seed) of one slot that waits for a person; the Dagster run
    # serving the request once known; why it failed, in words
    new_take: Mapped[bool] = mapped_column(default=False, server_default=false())
    run_id: Mapped[str | None]
    message: Mapped[str | None]


class ReviewDecision(Base):
    """Addition (studio): what a person decided about a kit's image or about the kit itself.

    ``asset_id`` is NULL for kit-level decisions (``approved_kit``, ``archived_kit``).
    """

    __tablename__ = "review_decisions"
    __table_args__ = (
        CheckConstraint(in_list("decision", REVIEW_DECISIONS), name="decision"),
        Index("idx_review_decisions_kit", "avatar_kit_id"),
        Index("idx_review_decisions_asset", "asset_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    avatar_kit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="CASCADE")
    )
    asset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("avatar_assets.id", ondelete="SET NULL")
    )
    decision: Mapped[str]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    note: Mapped[str | None]


class SigninLink(Base):
    """Addition (studio): a one-time sign-in link; only the SHA-256 of its token is stored."""

    __tablename__ = "signin_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class StudioSession(Base):
    """Addition (studio): a server-side browser session; the cookie token is stored hashed."""

    __tablename__ = "studio_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ProviderBudgetLease(Base):
    """Addition (fleet, 0006): one provider call in flight somewhere in the instance.

    A lease is taken before a prediction is created and deleted when the call ends; a process
    that dies leaves its lease behind only until ``expires_at`` (holders renew while the call
    runs). Times are Unix epoch seconds from the holders' clocks.
    """

    __tablename__ = "provider_budget_leases"
    __table_args__ = (Index("idx_provider_budget_leases_provider", "provider", "expires_at"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    provider: Mapped[str]
    holder: Mapped[str]
    units: Mapped[int] = mapped_column(default=1, server_default="1")  # predictions of the call
    acquired_at: Mapped[float] = mapped_column(Double())
    expires_at: Mapped[float] = mapped_column(Double())


class ProviderBudgetCreate(Base):
    """Addition (fleet, 0006): one prediction create, kept for the per-minute window."""

    __tablename__ = "provider_budget_creates"
    __table_args__ = (Index("idx_provider_budget_creates_provider", "provider", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    provider: Mapped[str]
    created_at: Mapped[float] = mapped_column(Double())


class KitIntakeClaim(Base):
    """Addition (fleet, 0006): who launches a new kit's first run (the sensor, the demo, a CLI).

    Inserted once per kit (primary key), so exactly one launcher wins, whatever the order in
    which the kit's row and its Dagster partition appear.
    """

    __tablename__ = "kit_intake_claims"

    avatar_kit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("avatar_kits.id", ondelete="CASCADE"), primary_key=True
    )
    claimed_by: Mapped[str]
    claimed_at: Mapped[datetime] = _created_at()
