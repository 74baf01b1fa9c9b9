"""Consistency gate: the kit's palette contract and the review state of an image.

- ``avatar_kits.palette_contract`` (JSON, JSONB on PostgreSQL, nullable): the model sheet's
  colour callouts extracted from the primary anchor (``consistency.palette``); NULL until the
  primary portrait is canonical.
- ``avatar_assets.review_state`` (TEXT, nullable, CHECK in ('pending', 'rejected',
  'accepted')): NULL = nothing pending; 'pending' = a non-canonical candidate waiting for a
  person (for example an image whose required checks could not be measured).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_STATE_CHECK = "ck_avatar_assets_review_state"


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("avatar_kits") as batch:
        batch.add_column(sa.Column("palette_contract", _json(), nullable=True))
    with op.batch_alter_table("avatar_assets") as batch:
        batch.add_column(sa.Column("review_state", sa.Text(), nullable=True))
        batch.create_check_constraint(
            op.f(REVIEW_STATE_CHECK), "review_state IN ('pending', 'rejected', 'accepted')"
        )


def downgrade() -> None:
    with op.batch_alter_table("avatar_assets") as batch:
        batch.drop_constraint(op.f(REVIEW_STATE_CHECK), type_="check")
        batch.drop_column("review_state")
    with op.batch_alter_table("avatar_kits") as batch:
        batch.drop_column("palette_contract")
