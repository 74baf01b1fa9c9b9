"""Assemble a kit's report input from the catalog and object store, and write the reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.consistency.report import (
    AssetReportInput,
    KitReport,
    KitReportInput,
    ReportFiles,
    build_kit_report,
    fleet_markdown,
    report_markdown,
    write_fleet_summary,
    write_kit_report,
)
from avatar_pipeline.consistency.types import EmbedderInfo, Thresholds
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.storage.base import ObjectNotFoundError, ObjectStore


@dataclass(frozen=True)
class KitReportResult:
    report: KitReport
    files: ReportFiles
    markdown: str

    @property
    def canonical_slots(self) -> int:
        return self.report.summary.n_canonical

    @property
    def failing_slots(self) -> int:
        return self.report.summary.n_failed

    @property
    def min_identity(self) -> float:
        value = self.report.summary.min_identity
        return float("nan") if value is None else float(value)


def _report_assets(
    session: Session, store: ObjectStore, kit_id: uuid.UUID
) -> list[AssetReportInput]:
    """Each slot's canonical asset, plus its newest candidate when that is newer (pending or
    rejected by the gate), so the report shows what failed and why."""
    assets = repo.list_assets(session, kit_id)
    by_slot: dict[str, list] = {}
    for asset in assets:
        by_slot.setdefault(repo.slot_of(asset), []).append(asset)
    chosen = []
    for rows in by_slot.values():
        rows.sort(key=lambda a: a.created_at)
        canonical = [a for a in rows if a.is_canonical]
        if canonical:
            chosen.append(canonical[-1])
        newest = rows[-1]
        if not newest.is_canonical and (
            not canonical or newest.created_at >= canonical[-1].created_at
        ):
            chosen.append(newest)
    inputs = []
    for asset in chosen:
        meta = dict(asset.generation_metadata or {})
        try:
            image = store.get(asset.storage_bucket, asset.storage_path)
        except ObjectNotFoundError:
            image = None
        inputs.append(
            AssetReportInput(
                slot=repo.slot_of(asset),
                asset_id=str(asset.id),
                storage_path=f"{asset.storage_bucket}/{asset.storage_path}",
                image=image,
                is_canonical=bool(asset.is_canonical),
                scores=meta.get("consistency"),
                asset_type=asset.asset_type,
                model=meta.get("model") or asset.source_type,
                model_version=meta.get("model_version"),
                cost_usd=meta.get("cost_usd"),
                seed=meta.get("seed"),
                derived_from_id=str(asset.derived_from_id) if asset.derived_from_id else None,
                created_at=asset.created_at,
                alternatives=meta.get("alternatives") or (),
                review_state=asset.review_state,
            )
        )
    return inputs


def kit_report(
    kit_id: str,
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    embedder: EmbedderInfo,
    thresholds: Thresholds,
) -> KitReport:
    with session_scope(session_factory) as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        data = KitReportInput(
            kit_id=str(kit.id),
            name=kit.name,
            status=kit.status,
            prompts={
                "appearance_prompt": kit.appearance_prompt,
                "style_prompt": kit.style_prompt,
                "negative_prompt": kit.negative_prompt,
            },
            embedder=embedder,
            thresholds=thresholds,
            assets=_report_assets(session, store, kit.id),
            required_slots=[s.name for s in ALL_SLOTS],
            palette_contract=dict(kit.palette_contract) if kit.palette_contract else None,
        )
    return build_kit_report(data)


def write_kit_report_for(
    kit_id: str,
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    embedder: EmbedderInfo,
    thresholds: Thresholds,
    reports_dir: Path,
) -> KitReportResult:
    report = kit_report(
        kit_id,
        session_factory=session_factory,
        store=store,
        embedder=embedder,
        thresholds=thresholds,
    )
    files = write_kit_report(report, Path(reports_dir))
    # Scene drift section (avatar_pipeline.scenes owns it): production scenes vs the anchor.
    from avatar_pipeline.scenes.drift_view import add_drift_to_kit_report

    add_drift_to_kit_report(files, kit_id, session_factory=session_factory, store=store)
    return KitReportResult(report, files, report_markdown(report))


def write_fleet_report(
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore,
    embedder: EmbedderInfo,
    thresholds: Thresholds,
    reports_dir: Path,
) -> tuple[Path, str, int]:
    """Write the fleet index over every (non-archived) kit; (index, markdown, kits).

    The per-kit report files are the ``consistency_report`` asset's; the index links to them.
    """
    with session_scope(session_factory) as session:
        kit_ids = [str(k.id) for k in repo.list_kits(session) if k.status != "archived"]
    reports = [
        kit_report(
            kit_id,
            session_factory=session_factory,
            store=store,
            embedder=embedder,
            thresholds=thresholds,
        )
        for kit_id in kit_ids
    ]
    index = write_fleet_summary(reports, Path(reports_dir))
    return index, fleet_markdown(reports), len(reports)
