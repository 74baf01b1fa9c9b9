"""Race-free kit intake: exactly one launcher starts a new kit's first run.

A new kit can be launched by the ``kit_sensor`` (a kit row written by the API or the studio), by
the demo, or by a command that runs its own kits. Whoever launches a kit's first run *claims*
the kit first: one row in ``kit_intake_claims`` per kit (primary key), inserted with
``ON CONFLICT DO NOTHING``, so exactly one claimant wins whatever the order in which the kit's
row, its Dagster partition and the claims appear. A launcher that writes the kit row itself
claims it in the same transaction (the sensor then never sees the kit unclaimed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.models import KitIntakeClaim, utcnow

SENSOR = "kit_sensor"
DEMO = "demo"


def _uuid(kit_id: uuid.UUID | str) -> uuid.UUID:
    return kit_id if isinstance(kit_id, uuid.UUID) else uuid.UUID(str(kit_id))


def claim_kit(session: Session, kit_id: uuid.UUID | str, claimant: str) -> bool:
    """Claim a kit's first run for ``claimant``; True if this call won (no one had claimed it).

    Concurrent claims of one kit: PostgreSQL makes the second wait for the first to commit and
    then do nothing; SQLite serialises writers. Either way exactly one insert counts.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(KitIntakeClaim)
        .values(avatar_kit_id=_uuid(kit_id), claimed_by=claimant, claimed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["avatar_kit_id"])
    )
    return session.execute(statement).rowcount == 1


def claim_kits(session: Session, kit_ids: Iterable[uuid.UUID | str], claimant: str) -> list[str]:
    """Claim several kits; returns the ids this call won."""
    return [str(k) for k in kit_ids if claim_kit(session, k, claimant)]


def claims(session: Session) -> dict[str, str]:
    """kit id -> who claimed its first run."""
    rows = session.execute(select(KitIntakeClaim.avatar_kit_id, KitIntakeClaim.claimed_by))
    return {str(kit_id): who for kit_id, who in rows}
