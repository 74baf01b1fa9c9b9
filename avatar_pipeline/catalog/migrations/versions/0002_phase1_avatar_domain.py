"""Phase 1 of the spec: avatar_kits, avatar_assets (+ kit_generation_requests), rename
episode_images -> scene_images with its kit/asset references, characters.active_avatar_kit_id,
and the image_assets comment (PostgreSQL only).

Existing episode rows keep ``avatar_kit_id = NULL`` (legacy, no kit reference). The data
migration of ``characters.avatar_url`` into kits is ``avatar_pipeline.catalog.legacy``: it needs
the object store, so it is not part of this schema migration.

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMAGE_ASSETS_COMMENT = (
    "Generic image assets (backgrounds, props, world elements). "
    "For character visuals, use avatar_assets."
)
# Constraints PostgreSQL keeps under their old names when a table is renamed.
SCENE_CONSTRAINT_RENAMES = (
    ("pk_episode_images", "pk_scene_images"),
    ("fk_episode_images_user_id_users", "fk_scene_images_user_id_users"),
    ("fk_episode_images_episode_id_episodes", "fk_scene_images_episode_id_episodes"),
)
ANCHOR_FKS = (
    ("fk_avatar_kits_primary_anchor_id_avatar_assets", "primary_anchor_id"),
    ("fk_avatar_kits_secondary_anchor_id_avatar_assets", "secondary_anchor_id"),
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _anchor_fk(name: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["avatar_assets.id"], name=name, ondelete="SET NULL")


def upgrade() -> None:
    sqlite = _is_sqlite()
    # avatar_kits <-> avatar_assets reference each other: SQLite accepts the forward reference
    # inline; PostgreSQL gets the anchor FKs once avatar_assets exists.
    op.create_table(
        "avatar_kits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("character_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("appearance_prompt", sa.Text(), nullable=False),
        sa.Column("style_prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=True),
        sa.Column("primary_anchor_id", sa.Uuid(), nullable=True),
        sa.Column("secondary_anchor_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'archived')", name=op.f("ck_avatar_kits_status")
        ),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name="fk_avatar_kits_character_id_characters",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_avatar_kits_created_by_users",
            ondelete="SET NULL",
        ),
        *([_anchor_fk(name, column) for name, column in ANCHOR_FKS] if sqlite else []),
        sa.PrimaryKeyConstraint("id", name="pk_avatar_kits"),
    )
    op.create_index("idx_avatar_kits_character", "avatar_kits", ["character_id"])
    op.create_index(
        "idx_avatar_kits_status",
        "avatar_kits",
        ["status"],
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "idx_avatar_kits_default",
        "avatar_kits",
        ["character_id"],
        unique=True,
        sqlite_where=sa.text("is_default = TRUE"),
        postgresql_where=sa.text("is_default = TRUE"),
    )

    op.create_table(
        "avatar_assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("avatar_kit_id", sa.Uuid(), nullable=False),
        sa.Column("asset_type", sa.Text(), nullable=False),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("pose", sa.Text(), nullable=True),
        sa.Column(
            "emotion_tags",
            sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("storage_bucket", sa.Text(), server_default="avatars", nullable=False),
        sa.Column("storage_path", sa.Text(), nullable=False),
        sa.Column("source_type", sa.Text(), nullable=False),
        sa.Column("derived_from_id", sa.Uuid(), nullable=True),
        sa.Column("generation_metadata", _json(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("mime_type", sa.Text(), server_default="image/png", nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("file_size_bytes", sa.Integer(), nullable=True),
        sa.Column("is_canonical", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "asset_type IN ('anchor_portrait', 'anchor_fullbody', 'expression', 'pose', 'outfit')",
            name=op.f("ck_avatar_assets_asset_type"),
        ),
        sa.CheckConstraint(
            "source_type IN ('manual_upload', 'ai_generated', 'imported')",
            name=op.f("ck_avatar_assets_source_type"),
        ),
        sa.ForeignKeyConstraint(
            ["avatar_kit_id"],
            ["avatar_kits.id"],
            name="fk_avatar_assets_avatar_kit_id_avatar_kits",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["derived_from_id"],
            ["avatar_assets.id"],
            name="fk_avatar_assets_derived_from_id_avatar_assets",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_avatar_assets"),
    )
    op.create_index("idx_avatar_assets_kit", "avatar_assets", ["avatar_kit_id"])
    op.create_index("idx_avatar_assets_type", "avatar_assets", ["asset_type"])
    op.create_index(
        "idx_avatar_assets_expression",
        "avatar_assets",
        ["expression"],
        sqlite_where=sa.text("expression IS NOT NULL"),
        postgresql_where=sa.text("expression IS NOT NULL"),
    )
    if not sqlite:
        for name, column in ANCHOR_FKS:
            op.create_foreign_key(
                name, "avatar_kits", "avatar_assets", [column], ["id"], ondelete="SET NULL"
            )

    op.create_table(
        "kit_generation_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("avatar_kit_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.Text(), server_default="kit", nullable=False),
        sa.Column("slots", sa.JSON(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "scope IN ('kit', 'anchors', 'expressions', 'poses')",
            name=op.f("ck_kit_generation_requests_scope"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'picked', 'done', 'failed')",
            name=op.f("ck_kit_generation_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["avatar_kit_id"],
            ["avatar_kits.id"],
            name="fk_kit_generation_requests_avatar_kit_id_avatar_kits",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name="fk_kit_generation_requests_requested_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_kit_generation_requests"),
    )
    op.create_index("idx_kit_generation_requests_status", "kit_generation_requests", ["status"])
    op.create_index("idx_kit_generation_requests_kit", "kit_generation_requests", ["avatar_kit_id"])

    # episode_images -> scene_images; rows keep avatar_kit_id NULL.
    op.drop_index("idx_episode_images_user", table_name="episode_images")
    op.drop_index("idx_episode_images_episode", table_name="episode_images")
    op.rename_table("episode_images", "scene_images")
    if not sqlite:
        for old, new in SCENE_CONSTRAINT_RENAMES:
            op.execute(f"ALTER TABLE scene_images RENAME CONSTRAINT {old} TO {new}")
    with op.batch_alter_table("scene_images") as batch:
        batch.add_column(sa.Column("avatar_kit_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("derived_from_asset_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_scene_images_avatar_kit_id_avatar_kits",
            "avatar_kits",
            ["avatar_kit_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            "fk_scene_images_derived_from_asset_id_avatar_assets",
            "avatar_assets",
            ["derived_from_asset_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index("idx_scene_images_user", "scene_images", ["user_id"])
    op.create_index("idx_scene_images_episode", "scene_images", ["episode_id"])
    op.create_index("idx_scene_images_avatar_kit", "scene_images", ["avatar_kit_id"])

    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("active_avatar_kit_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_characters_active_avatar_kit_id_avatar_kits",
            "avatar_kits",
            ["active_avatar_kit_id"],
            ["id"],
            ondelete="SET NULL",
        )

    if not sqlite:
        op.create_table_comment("image_assets", IMAGE_ASSETS_COMMENT)


def downgrade() -> None:
    sqlite = _is_sqlite()
    if not sqlite:
        op.drop_table_comment("image_assets", existing_comment=IMAGE_ASSETS_COMMENT)

    with op.batch_alter_table("characters") as batch:
        batch.drop_constraint("fk_characters_active_avatar_kit_id_avatar_kits", type_="foreignkey")
        batch.drop_column("active_avatar_kit_id")

    op.drop_index("idx_scene_images_avatar_kit", table_name="scene_images")
    op.drop_index("idx_scene_images_episode", table_name="scene_images")
    op.drop_index("idx_scene_images_user", table_name="scene_images")
    with op.batch_alter_table("scene_images") as batch:
        batch.drop_constraint(
            "fk_scene_images_derived_from_asset_id_avatar_assets", type_="foreignkey"
        )
        batch.drop_constraint("fk_scene_images_avatar_kit_id_avatar_kits", type_="foreignkey")
        batch.drop_column("derived_from_asset_id")
        batch.drop_column("avatar_kit_id")
    if not sqlite:
        for old, new in SCENE_CONSTRAINT_RENAMES:
            op.execute(f"ALTER TABLE scene_images RENAME CONSTRAINT {new} TO {old}")
    op.rename_table("scene_images", "episode_images")
    op.create_index("idx_episode_images_user", "episode_images", ["user_id"])
    op.create_index("idx_episode_images_episode", "episode_images", ["episode_id"])

    op.drop_table("kit_generation_requests")
    if not sqlite:
        for name, _column in ANCHOR_FKS:
            op.drop_constraint(name, "avatar_kits", type_="foreignkey")
    op.drop_table("avatar_assets")
    op.drop_table("avatar_kits")
