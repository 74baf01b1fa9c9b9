"""Orphans between the catalog and the object store, and their removal (the sweep).

Two kinds, both left only by a process killed at the wrong moment (``kill -9``, OOM, power):

- an *orphan object*: a generated image under ``avatars/<kit>/(anchors|expressions|poses|
  outfits)/..._<uuid>.png`` that no ``avatar_assets`` row references (killed between the object
  write and the row's commit). A re-run of the kit usually heals it by itself: a generated
  image's asset id, hence its key, is derived from the request fingerprint, so the re-run
  writes the same key and then the row. Otherwise the sweep deletes it.
- an *orphan row*: an ``avatar_assets`` row whose object is missing. The sweep deletes the row
  (clearing the kit's anchor pointers and ``derived_from`` links to it first); a slot left empty
  is produced again by the next kit run, from the image cache when the image was paid for.

:func:`find_orphans` only lists; :func:`remove_orphans` deletes what a listing found, each row in
its own transaction. Objects of kits in ``exclude_kits`` (a run in progress) are never touched.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit
from avatar_pipeline.storage.base import ObjectStore

logger = logging.getLogger(__name__)

BUCKET = "avatars"
GENERATED_KEY = re.compile(
    r"^(?P<kit>[0-9a-f-]{36})/(anchors|expressions|poses|outfits)/[a-z0-9_-]+_"
    r"[0-9a-f-]{36}\.png$"
)
_POINTERS = ("primary_anchor_id", "secondary_anchor_id")


@dataclass
class OrphanReport:
    objects: list[str] = field(default_factory=list)  # avatars/<path> without a row
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (asset id, kit id, path)
    removed_objects: list[str] = field(default_factory=list)
    removed_rows: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # could not be removed, and why

    @property
    def clean(self) -> bool:
        return not self.objects and not self.rows

    def lines(self) -> list[str]:
        out = [f"orphan object  {BUCKET}/{p}" for p in self.objects]
        out += [
            f"orphan row     asset {a} (kit {k}) -> missing {BUCKET}/{p}" for a, k, p in self.rows
        ]
        return out


def find_orphans(
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    *,
    exclude_kits: Iterable[str] = (),
) -> OrphanReport:
    """List orphan objects and orphan rows (changes nothing)."""
    excluded = {str(k) for k in exclude_kits}
    report = OrphanReport()
    with session_scope(session_factory) as session:
        rows = session.execute(
            select(
                AvatarAsset.id,
                AvatarAsset.avatar_kit_id,
                AvatarAsset.storage_bucket,
                AvatarAsset.storage_path,
            )
        ).all()
    referenced = {(bucket, path) for _, _, bucket, path in rows}
    for path in sorted(store.list(BUCKET)):
        m = GENERATED_KEY.match(path)
        if m is None or m.group("kit") in excluded:
            continue
        if (BUCKET, path) not in referenced:
            report.objects.append(path)
    for asset_id, kit_id, bucket, path in rows:
        if str(kit_id) in excluded or bucket != BUCKET:
            continue
        if not store.exists(bucket, path):
            report.rows.append((str(asset_id), str(kit_id), path))
    # An object written after the row listing above belongs to a row committed since: re-check.
    if report.objects:
        with session_scope(session_factory) as session:
            now_referenced = set(
                session.scalars(
                    select(AvatarAsset.storage_path).where(
                        AvatarAsset.storage_path.in_(report.objects)
                    )
                )
            )
        report.objects = [p for p in report.objects if p not in now_referenced]
    return report


def remove_orphans(
    session_factory: sessionmaker[Session], store: ObjectStore, report: OrphanReport
) -> OrphanReport:
    """Delete what ``report`` lists (objects first re-checked to still have no row)."""
    for path in report.objects:
        with session_scope(session_factory) as session:
            claimed = session.scalar(
                select(AvatarAsset.id).where(AvatarAsset.storage_path == path).limit(1)
            )
        if claimed is not None:
            report.kept.append(f"{BUCKET}/{path}: a row references it now")
            continue
        store.delete(BUCKET, path)
        report.removed_objects.append(path)
    for asset_id, _kit_id, path in report.rows:
        if store.exists(BUCKET, path):
            report.kept.append(f"asset {asset_id}: its object exists now")
            continue
        try:
            with session_scope(session_factory) as session:
                _delete_row(session, uuid.UUID(asset_id))
            report.removed_rows.append(asset_id)
        except Exception as exc:  # e.g. a scene still references it: report, go on
            report.kept.append(f"asset {asset_id}: {type(exc).__name__}: {exc}"[:300])
    logger.info(
        "sweep removed %d orphan objects and %d orphan rows (%d kept)",
        len(report.removed_objects),
        len(report.removed_rows),
        len(report.kept),
    )
    return report


def _delete_row(session: Session, asset_id: uuid.UUID) -> None:
    asset = session.get(AvatarAsset, asset_id)
    if asset is None:
        return
    kit = session.get(AvatarKit, asset.avatar_kit_id)
    if kit is not None:
        for pointer in _POINTERS:
            if getattr(kit, pointer, None) == asset_id:
                setattr(kit, pointer, None)
    for child in session.scalars(
        select(AvatarAsset).where(AvatarAsset.derived_from_id == asset_id)
    ):
        child.derived_from_id = None
    session.flush()
    session.delete(asset)
    session.flush()
