"""Close the loop on generation requests the API wrote: picked -> done, or picked -> failed
(a provider failure, or the consistency gate stopped the run). The API shows the status, the
run serving the request (``run_id``) and, for a failure, the reason in words (``message``)."""

import uuid

import dagster as dg
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.generation_requests import set_request_run
from avatar_pipeline.jobs import kit_job
from avatar_pipeline.resources import CatalogResource

REQUEST_TAG = "avatar/request"
MAX_MESSAGE = 2000


def fail_request(session: Session, request_id: uuid.UUID, message: str) -> None:
    """Mark a request failed with the reason in words (when the table has a message column)."""
    request = repo.mark_generation_request(session, request_id, "failed")
    if hasattr(request, "message"):
        request.message = message[:MAX_MESSAGE]
        session.flush()


def _failure_message(context: dg.RunStatusSensorContext) -> str | None:
    failure = getattr(context, "failure_event", None)
    if failure is None:
        return None
    text = getattr(failure, "message", None) or ""
    steps = getattr(context, "get_step_failure_events", None)
    if steps:
        reasons = []
        for event in steps():
            error = getattr(event.event_specific_data, "error", None)
            user = getattr(event.event_specific_data, "user_failure_data", None)
            reason = getattr(user, "description", None) or getattr(error, "message", None)
            if reason:
                reasons.append(reason.strip().splitlines()[0])
        if reasons:
            text = "; ".join(reasons)
    return text or None


def _finish(context: dg.RunStatusSensorContext, catalog: CatalogResource, status: str):
    request_id = context.dagster_run.tags.get(REQUEST_TAG)
    if not request_id:
        return dg.SkipReason("the run was not started by a generation request")
    with catalog.session() as session:
        set_request_run(session, request_id, context.dagster_run.run_id)
        if status == "failed":
            fail_request(
                session,
                uuid.UUID(request_id),
                _failure_message(context) or f"Dagster run {context.dagster_run.run_id} failed",
            )
        else:
            repo.mark_generation_request(session, uuid.UUID(request_id), status)
    return dg.SkipReason(f"generation request {request_id} marked {status}")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED,
    monitored_jobs=[kit_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A kit run started by a generation request: record its run id on the request "
    "(the studio links it).",
)
def generation_request_started(context: dg.RunStatusSensorContext, catalog: CatalogResource):
    request_id = context.dagster_run.tags.get(REQUEST_TAG)
    if not request_id:
        return dg.SkipReason("the run was not started by a generation request")
    with catalog.session() as session:
        set_request_run(session, request_id, context.dagster_run.run_id)
    return dg.SkipReason(
        f"generation request {request_id} is served by run {context.dagster_run.run_id}"
    )


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
