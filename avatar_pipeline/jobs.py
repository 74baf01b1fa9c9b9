"""Jobs: produce a kit (images + report), or only rebuild its report."""

import dagster as dg

from avatar_pipeline.assets import groups
from avatar_pipeline.assets.partitions import kit_partitions
from avatar_pipeline.assets.provider_models import MODEL_ROLES

kit_job = dg.define_asset_job(
    "kit_job",
    selection=dg.AssetSelection.groups(groups.ANCHORS, groups.EXPRESSIONS, groups.POSES)
    | dg.AssetSelection.assets("consistency_report"),
    partitions_def=kit_partitions,
    description="Generate, score and promote one kit's images, then write its report.",
)

kit_report_job = dg.define_asset_job(
    "kit_report_job",
    selection=dg.AssetSelection.assets("consistency_report"),
    partitions_def=kit_partitions,
    description="Rebuild one kit's consistency report from the catalog.",
)

observe_provider_models_job = dg.define_asset_job(
    "observe_provider_models_job",
    # observable sources must be named: a group selection leaves them out
    selection=dg.AssetSelection.assets(*MODEL_ROLES),
    description="Record which model version the provider serves for each role, so kit images "
    "made by an older version show as stale.",
)

fleet_report_job = dg.define_asset_job(
    "fleet_report_job",
    selection=dg.AssetSelection.assets("fleet_consistency"),
    description="Rebuild the fleet index (every kit's consistency at a glance).",
)
