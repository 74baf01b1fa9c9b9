"""Close the loop on generation requests the API wrote: picked -> done, or picked -> failed
(a provider failure, or the consistency gate stopped the run). The API shows the status."""

import uuid

import dagster as dg

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.jobs import kit_job
from avatar_pipeline.resources import CatalogResource

REQUEST_TAG = "avatar/request"


def _finish(context: dg.RunStatusSensorContext, catalog: CatalogResource, status: str):
    request_id = context.dagster_run.tags.get(REQUEST_TAG)
    if not request_id:
        return dg.SkipReason("the run was not started by a generation request")
    with catalog.session() as session:
        repo.mark_generation_request(session, uuid.UUID(request_id), status)
    return dg.SkipReason(f"generation request {request_id} marked {status}")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[kit_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A kit run started by an API generation request succeeded: the request is done.",
)
def generation_request_done(context: dg.RunStatusSensorContext, catalog: CatalogResource):
    return _finish(context, catalog, "done")


@dg.run_failure_sensor(
    monitored_jobs=[kit_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A kit run started by an API generation request failed: the request failed.",
)
def generation_request_failed(context: dg.RunFailureSensorContext, catalog: CatalogResource):
    return _finish(context, catalog, "failed")
