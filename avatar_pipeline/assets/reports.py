"""Per-kit consistency reports (HTML + JSON + contact sheet) and the fleet summary."""

from pathlib import Path

import dagster as dg

from avatar_pipeline.assets import groups
from avatar_pipeline.assets.kit_images import KIT_IMAGE_SPECS
from avatar_pipeline.assets.partitions import kit_partitions
from avatar_pipeline.generation.reporting import write_fleet_report, write_kit_report_for
from avatar_pipeline.resources import CatalogResource, ConsistencyResource, ObjectStoreResource


def report_args(
    catalog: CatalogResource, object_store: ObjectStoreResource, consistency: ConsistencyResource
) -> dict:
    embedder = consistency.get_embedder()
    return {
        "session_factory": catalog.session_factory(),
        "store": object_store.get_store(),
        "embedder": embedder.info,
        "thresholds": consistency.get_thresholds(),
        "reports_dir": Path(consistency.reports_dir),
    }


@dg.asset(
    group_name=groups.REPORTS,
    partitions_def=kit_partitions,
    deps=[spec.key for spec in KIT_IMAGE_SPECS],
    kinds={"html"},
)
def consistency_report(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    object_store: ObjectStoreResource,
    consistency: ConsistencyResource,
) -> dg.MaterializeResult:
    """The kit's consistency report: every image with its scores against the thresholds."""
    result = write_kit_report_for(
        context.partition_key, **report_args(catalog, object_store, consistency)
    )
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(result.markdown),
            "report_html": dg.MetadataValue.path(str(result.files.html)),
            "report_json": dg.MetadataValue.path(str(result.files.json)),
            "contact_sheet": dg.MetadataValue.path(str(result.files.contact_sheet_png)),
            "canonical_slots": result.canonical_slots,
            "failing_slots": result.failing_slots,
            "min_identity": result.min_identity,
        }
    )


@dg.asset(group_name=groups.REPORTS, deps=[consistency_report], kinds={"html"})
def fleet_consistency(
    catalog: CatalogResource, object_store: ObjectStoreResource, consistency: ConsistencyResource
) -> dg.MaterializeResult:
    """Every kit's consistency at a glance."""
    index, markdown, n = write_fleet_report(**report_args(catalog, object_store, consistency))
    return dg.MaterializeResult(
        metadata={
            "kits": n,
            "summary": dg.MetadataValue.md(markdown),
            "index": dg.MetadataValue.path(str(index)),
        }
    )
