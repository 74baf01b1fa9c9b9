"""Jobs: produce a kit (images + report), or only rebuild its report."""

import dagster as dg

from avatar_pipeline.assets import groups
from avatar_pipeline.assets.partitions import kit_partitions

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
