"""Kit approval from the Dagster UI: an art op launches ``approve_kit_job`` with a kit id.

A kit becomes ``active`` only through this explicit step (or the API/CLI equivalents), and
only once its required slots are canonical.
"""

import uuid

import dagster as dg
from pydantic import Field

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.resources import CatalogResource


class ApproveKitConfig(dg.Config):
    kit_id: str = Field(description="Id of the kit to approve (the kit's partition key).")


@dg.op(description="Set the kit's status to active once its anchors are canonical.")
def approve_kit(context: dg.OpExecutionContext, config: ApproveKitConfig, catalog: CatalogResource):
    with catalog.session() as session:
        kit = repo.approve_kit(session, uuid.UUID(config.kit_id))
        context.log.info(f"kit {kit.id} ({kit.name}) is now {kit.status}")


@dg.job(description="Approve a kit: status -> active (art ops, after reading its report).")
def approve_kit_job():
    approve_kit()
