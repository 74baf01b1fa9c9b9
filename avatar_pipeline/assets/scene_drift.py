"""Scene drift across the fleet: flags a kit whose recent production scenes fall below its
identity threshold (for example after a provider upgrade), hourly."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from avatar_pipeline.assets import groups
from avatar_pipeline.files import atomic_write
from avatar_pipeline.resources import CatalogResource, ConsistencyResource, ObjectStoreResource
from avatar_pipeline.scenes.drift import DRIFTING, UNMEASURED, KitDrift, fleet_drift
from avatar_pipeline.scenes.drift_view import drift_view, render_drift_section

CHECK_NAME = "recent_scenes_consistent"


class SceneDriftConfig(dg.Config):
    window: int = Field(default=20, description="Recent scored scenes per kit to judge.")
    min_scenes: int = Field(default=3, description="Fewer scored scenes: not measured.")
    margin: float = Field(default=0.0, description="Allowed drop below the identity threshold.")


def _table(drifts: list[KitDrift]) -> str:
    rows = ["| kit | status | median | threshold | scenes | why |", "|---|---|---|---|---|---|"]
    for d in drifts:
        median = f"{d.recent_median:.3f}" if d.recent_median is not None else "-"
        threshold = f"{d.threshold:.3f}" if d.threshold is not None else "-"
        rows.append(
            f"| {d.kit_name} ({d.kit_id[:8]}) | {d.status} | {median} | {threshold} | "
            f"{len(d.points)} | {d.reason} |"
        )
    return "\n".join(rows)


def check_result(drifts: list[KitDrift]) -> dg.AssetCheckResult:
    """Fails (ERROR) when a kit drifts; fails (WARN, "not measured") when no kit could be
    judged or some could not; passes only when every kit with scenes was measured and holds."""
    drifting = [d for d in drifts if d.status == DRIFTING]
    unmeasured = [d for d in drifts if d.status == UNMEASURED]
    metadata = {
        "drifting_kits": dg.MetadataValue.json([{"id": d.kit_id, "name": d.kit_name,
                                                  "reason": d.reason} for d in drifting]),
        "unmeasured_kits": dg.MetadataValue.json([d.kit_id for d in unmeasured]),
    }  # fmt: skip
    if drifting:
        names = ", ".join(d.kit_name for d in drifting)
        return dg.AssetCheckResult(
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"drifting: {names}",
            metadata=metadata,
        )
    if unmeasured or not drifts:
        why = "no kit has scenes yet" if not drifts else f"{len(unmeasured)} kit(s) unmeasured"
        return dg.AssetCheckResult(
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"not measured: {why}",
            metadata=metadata,
        )
    return dg.AssetCheckResult(check_name=CHECK_NAME, passed=True, metadata=metadata)


@dg.asset(
    group_name=groups.REPORTS,
    kinds={"html"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset="scene_drift",
            description="Every kit's recent production scenes reach its identity threshold.",
        )
    ],
)
def scene_drift(
    context: dg.AssetExecutionContext,
    config: SceneDriftConfig,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> dg.MaterializeResult:
    """Per kit: are its recent production scenes still its character (identity vs anchor)?"""
    with catalog.session() as session:
        drifts = fleet_drift(
            session, window=config.window, min_scenes=config.min_scenes, margin=config.margin
        )
    store = object_store.get_store()
    sections = [render_drift_section(drift_view(d, store)) for d in drifts]
    path = Path(consistency.reports_dir) / "scene_drift.html"
    page = "<!doctype html><meta charset='utf-8'><title>Scene drift</title>\n" + "\n".join(
        sections or ["<p>No kit has scenes yet.</p>"]
    )
    atomic_write(path, page.encode("utf-8"))
    for drift in drifts:
        if drift.drifting:
            context.log.warning("kit %s (%s) drifts: %s", drift.kit_name, drift.kit_id,
                                drift.reason)  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "kits": len(drifts),
            "drifting": sum(1 for d in drifts if d.drifting),
            "summary": dg.MetadataValue.md(_table(drifts) if drifts else "no scenes yet"),
            "report_html": dg.MetadataValue.path(str(path)),
        },
        check_results=[check_result(drifts)],
    )


scene_drift_job = dg.define_asset_job(
    "scene_drift_job",
    selection=dg.AssetSelection.assets(scene_drift),
    description="Score the fleet's recent production scenes for drift from their kits.",
)

scene_drift_schedule = dg.ScheduleDefinition(
    name="scene_drift_schedule",
    job=scene_drift_job,
    cron_schedule="15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: flag kits whose recent production scenes fall below their threshold.",
)
