"""Kit sensors. The catalog is the contract: the API writes kit rows and generation requests,
the pipeline writes canonical assets, and these sensors compare the two.
"""

import dagster as dg

from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME, kit_partitions
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.domain.vocab import SourceType
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.jobs import kit_job, kit_report_job
from avatar_pipeline.resources import CatalogResource
from avatar_pipeline.sensors.request_status import REQUEST_TAG
from avatar_pipeline.sensors.selection import (
    kit_run_config,
    partitioned_kits,
    selection_for,
    slot_names_for_scope,
)


@dg.sensor(
    job=kit_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new kit row, or a generation request written by the API, starts a run "
    "for that kit only.",
)
def kit_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource):
    known = set(context.instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    run_requests: list[dg.RunRequest] = []
    new_ids: list[str] = []
    with catalog.session() as session:
        for kit in repo.list_kits(session):
            kit_id = str(kit.id)
            if kit.status == "archived" or kit_id in known:
                continue
            new_ids.append(kit_id)
            run_requests.append(
                dg.RunRequest(
                    partition_key=kit_id,
                    run_key=f"new-kit:{kit_id}",
                    run_config=kit_run_config("new-kit"),
                    tags={"avatar/trigger": "new-kit", "avatar/kit": kit.name[:60]},
                )
            )
        for request in repo.pending_generation_requests(session):
            kit_id = str(request.avatar_kit_id)
            slots = slot_names_for_scope(request.scope, request.slots)
            if kit_id not in known and kit_id not in new_ids:
                new_ids.append(kit_id)
            run_requests.append(
                dg.RunRequest(
                    partition_key=kit_id,
                    run_key=f"request:{request.id}",
                    asset_selection=selection_for(slots),
                    run_config=kit_run_config("generation-request"),
                    tags={
                        "avatar/trigger": "generation-request",
                        REQUEST_TAG: str(request.id),
                    },
                )
            )
            repo.mark_generation_request(session, request.id, "picked")
    if not run_requests:
        return dg.SkipReason("no new kits and no pending generation requests")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[kit_partitions.build_add_request(new_ids)] if new_ids else [],
    )


def stale_slots(session, kit) -> tuple[str | None, list[str]]:
    """(why, slot names) to re-generate because prompts or slot definitions changed."""
    canonical = repo.canonical_assets(session, kit.id)
    generated = {
        slot: asset
        for slot, asset in canonical.items()
        if asset.source_type == SourceType.AI_GENERATED.value
    }
    if not canonical:
        return None, []
    prompt_hash = repo.kit_prompts(kit).prompt_hash
    if any(
        (a.generation_metadata or {}).get("kit_prompt_hash") != prompt_hash
        for a in generated.values()
    ):
        return f"prompts:{prompt_hash}", [s.name for s in ALL_SLOTS]
    current = {s.name: s.definition_hash for s in ALL_SLOTS}
    changed = [
        name
        for name, asset in generated.items()
        if (asset.generation_metadata or {}).get("slot_definition_hash") != current.get(name)
    ]
    if changed:
        changed = [s.name for s in ALL_SLOTS if s.name in changed]
        return "definitions:" + ",".join(f"{n}={current[n]}" for n in changed), changed
    return None, []


@dg.sensor(
    job=kit_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A kit whose appearance/style/negative prompt changed is re-generated; a "
    "changed expression or pose definition re-generates that slot only.",
)
def prompt_change_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource):
    run_requests = []
    with catalog.session() as session:
        for kit in partitioned_kits(context.instance, session):
            why, slots = stale_slots(session, kit)
            if not slots:
                continue
            trigger = "prompt-change" if why and why.startswith("prompts:") else "definition-change"
            run_requests.append(
                dg.RunRequest(
                    partition_key=str(kit.id),
                    run_key=f"{kit.id}:{why}",  # once per kit and change, even if the gate fails
                    asset_selection=selection_for(slots),
                    run_config=kit_run_config(trigger),
                    tags={"avatar/trigger": trigger},
                )
            )
    if not run_requests:
        return dg.SkipReason("no kit's prompts or slot definitions changed")
    return dg.SensorResult(run_requests=run_requests)


@dg.run_failure_sensor(
    monitored_jobs=[kit_job],
    request_job=kit_report_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run stopped by the consistency gate still gets its kit report, so art ops "
    "see which images failed and why.",
)
def report_after_failed_gate(context: dg.RunFailureSensorContext):
    partition = context.dagster_run.tags.get("dagster/partition")
    if not partition:
        return dg.SkipReason("failed run has no kit partition")
    return dg.RunRequest(
        partition_key=partition,
        run_key=f"report-after:{context.dagster_run.run_id}",
        tags={"avatar/trigger": "report-after-failed-gate"},
    )
