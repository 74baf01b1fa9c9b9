"""Fleet scale: the instance-wide provider budget and race-free kit intake.

- ``provider_budget_leases``: provider calls in flight anywhere in the instance (one row per
  call, with an expiry so a killed process never holds budget for long).
- ``provider_budget_creates``: prediction creates of the last minute (the per-minute window).
- ``kit_intake_claims``: one row per kit naming who launches its first run (the kit sensor, the
  demo, a CLI); the primary key makes exactly one launcher win.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_budget_leases",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("units", sa.Integer(), server_default="1", nullable=False),
        sa.Column("acquired_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_budget_leases")),
    )
    op.create_index(
        "idx_provider_budget_leases_provider",
        "provider_budget_leases",
        ["provider", "expires_at"],
    )
    op.create_table(
        "provider_budget_creates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_budget_creates")),
    )
    op.create_index(
        "idx_provider_budget_creates_provider",
        "provider_budget_creates",
        ["provider", "created_at"],
    )
    op.create_table(
        "kit_intake_claims",
        sa.Column("avatar_kit_id", sa.Uuid(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=False),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["avatar_kit_id"],
            ["avatar_kits.id"],
            name=op.f("fk_kit_intake_claims_avatar_kit_id_avatar_kits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("avatar_kit_id", name=op.f("pk_kit_intake_claims")),
    )


def downgrade() -> None:
    op.drop_table("kit_intake_claims")
    op.drop_index("idx_provider_budget_creates_provider", table_name="provider_budget_creates")
    op.drop_table("provider_budget_creates")
    op.drop_index("idx_provider_budget_leases_provider", table_name="provider_budget_leases")
    op.drop_table("provider_budget_leases")
