"""Scene flow: episode messages (the conversation a scene is written from) and the scene's
consistency score against its kit's primary anchor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "episode_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("episode_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("role IN ('user', 'assistant')", name=op.f("ck_episode_messages_role")),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_episode_messages_episode_id_episodes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_episode_messages"),
    )
    op.create_index(
        "idx_episode_messages_episode", "episode_messages", ["episode_id", "created_at"]
    )
    with op.batch_alter_table("scene_images") as batch:
        batch.add_column(sa.Column("consistency_score", sa.Double(), nullable=True))
    op.create_index("idx_scene_images_kit_created", "scene_images", ["avatar_kit_id", "created_at"])


def downgrade() -> None:
    op.drop_index("idx_scene_images_kit_created", table_name="scene_images")
    with op.batch_alter_table("scene_images") as batch:
        batch.drop_column("consistency_score")
    op.drop_index("idx_episode_messages_episode", table_name="episode_messages")
    op.drop_table("episode_messages")
