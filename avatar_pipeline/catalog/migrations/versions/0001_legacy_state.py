"""Legacy state, before the avatar domain: users, characters with a single avatar_url,
episodes, generic image_assets and episode_images.

Revision ID: 0001
Revises:
Create Date: 2024-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), nullable=False)


def _created_at() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default="user", nullable=False),
        _created_at(),
        sa.CheckConstraint("role IN ('admin', 'user')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "characters",
        _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_characters"),
    )
    op.create_table(
        "episodes",
        _id(),
        sa.Column("character_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name="fk_episodes_character_id_characters",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_episodes_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_episodes"),
    )
    op.create_index("idx_episodes_user", "episodes", ["user_id"])
    op.create_table(
        "image_assets",
        _id(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("storage_bucket", sa.Text(), nullable=False),
        sa.Column("storage_path", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_image_assets"),
    )
    op.create_table(
        "episode_images",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("episode_id", sa.Uuid(), nullable=False),
        sa.Column("storage_bucket", sa.Text(), server_default="scenes", nullable=False),
        sa.Column("storage_path", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("is_memory", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("generation_metadata", _json(), server_default=sa.text("'{}'"), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_episode_images_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_episode_images_episode_id_episodes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_episode_images"),
    )
    op.create_index("idx_episode_images_user", "episode_images", ["user_id"])
    op.create_index("idx_episode_images_episode", "episode_images", ["episode_id"])


def downgrade() -> None:
    op.drop_table("episode_images")
    op.drop_table("image_assets")
    op.drop_table("episodes")
    op.drop_table("characters")
    op.drop_table("users")
