"""Art-ops studio: review decisions, one-time sign-in links, browser sessions.

- ``review_decisions``: what a person decided about a kit's image or the kit itself
  (``accepted`` / ``rejected`` an image, ``approved_kit`` / ``archived_kit``), by whom and when.
- ``signin_links``: one-time sign-in links; only the SHA-256 of the link's token is stored,
  with its expiry and the time it was used (a used or expired link is refused).
- ``studio_sessions``: server-side browser sessions; the cookie carries a random token and only
  its SHA-256 is stored, so a database read does not yield a usable cookie. Signing out or
  expiry ends a session on the server.
- ``kit_generation_requests``: ``new_take`` (the request asks for a new take — a new seed — of one
  slot, which then waits for a person), ``run_id`` (the Dagster run serving it, once known) and
  ``message`` (why it failed, in words).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_DECISIONS = ("accepted", "rejected", "approved_kit", "archived_kit")


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.func.now() if default else None,
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("avatar_kit_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        _timestamp("decided_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IN ({})".format(", ".join(repr(d) for d in REVIEW_DECISIONS)),
            name=op.f("ck_review_decisions_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["avatar_kit_id"],
            ["avatar_kits.id"],
            name="fk_review_decisions_avatar_kit_id_avatar_kits",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["avatar_assets.id"],
            name="fk_review_decisions_asset_id_avatar_assets",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name="fk_review_decisions_decided_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_decisions"),
    )
    op.create_index("idx_review_decisions_kit", "review_decisions", ["avatar_kit_id"])
    op.create_index("idx_review_decisions_asset", "review_decisions", ["asset_id"])

    op.create_table(
        "signin_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", default=False),
        _timestamp("used_at", nullable=True, default=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_signin_links_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signin_links"),
        sa.UniqueConstraint("token_hash", name="uq_signin_links_token_hash"),
    )

    op.create_table(
        "studio_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", default=False),
        _timestamp("ended_at", nullable=True, default=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_studio_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_studio_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_studio_sessions_token_hash"),
    )

    with op.batch_alter_table("kit_generation_requests") as batch:
        batch.add_column(
            sa.Column("new_take", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("run_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kit_generation_requests") as batch:
        batch.drop_column("message")
        batch.drop_column("run_id")
        batch.drop_column("new_take")
    op.drop_table("studio_sessions")
    op.drop_table("signin_links")
    op.drop_index("idx_review_decisions_asset", table_name="review_decisions")
    op.drop_index("idx_review_decisions_kit", table_name="review_decisions")
    op.drop_table("review_decisions")
