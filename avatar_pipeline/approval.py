"""Kit approval from the Dagster UI: an art op launches ``approve_kit_job`` with a kit id or name.

A kit becomes ``active`` only through this explicit step (or the studio, API and CLI
equivalents), and only once its required slots are canonical. The decision is recorded in
``review_decisions``; ``report_refresh_sensor`` then rebuilds the kit's report.
"""

import dagster as dg
from pydantic import Field

from avatar_pipeline.assets.partitions import lookup_kit
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import CatalogError
from avatar_pipeline.catalog.reviews import record_decision
from avatar_pipeline.resources import CatalogResource


class ApproveKitConfig(dg.Config):
    kit_id: str = Field(
        description="The kit to approve: its id, or its exact name (e.g. 'Mika Default' or "
        "'mika-default') where only one kit has that name."
    )


@dg.op(description="Set the kit's status to active once its anchors are canonical.")
def approve_kit(context: dg.OpExecutionContext, config: ApproveKitConfig, catalog: CatalogResource):
    try:
        with catalog.session() as session:
            kit = lookup_kit(session, config.kit_id, what="kit_id")
            try:
                context.instance.add_run_tags(context.run_id, kit.tags)
            except Exception as exc:  # a tag is a convenience
                context.log.debug(f"could not tag the run: {exc}")
            was = kit.status
            approved = repo.approve_kit(session, kit.id)
            if was != "active":
                record_decision(
                    session,
                    kit_id=approved.id,
                    decision="approved_kit",
                    note=f"approve_kit_job run {context.run_id}",
                )
            status = approved.status
    except CatalogError as exc:
        # the kit is unknown or not approvable: say why, without a traceback or a retry
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    if was == "active":
        context.log.info(f"kit {kit.label()} was already active; nothing changed")
    else:
        context.log.info(f"kit {kit.label()} is now {status}")


@dg.job(
    description="Approve a kit: status -> active (art ops, after reading its report). "
    "Config: ops.approve_kit.config.kit_id = the kit's id or name."
)
def approve_kit_job():
    approve_kit()
