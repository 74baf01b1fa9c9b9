"""Kit sensors. The catalog is the contract: the API writes kit rows and generation requests,
the pipeline writes canonical assets, and these sensors compare the two.
"""

import dagster as dg

from avatar_pipeline.assets.partitions import (
    KITS_PARTITION_NAME,
    kit_partitions,
    kit_tags,
    lookup_kit,
)
from avatar_pipeline.catalog import kit_intake
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.kit_lookup import KitLookupError
from avatar_pipeline.domain.vocab import SourceType
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.jobs import kit_job, kit_report_job
from avatar_pipeline.resources import CatalogResource
from avatar_pipeline.sensors.request_status import REQUEST_TAG, fail_request
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
        pending = repo.pending_generation_requests(session)
        requested = {str(r.avatar_kit_id) for r in pending}
        names: dict[str, str] = {}
        claimed = kit_intake.claims(session)  # fleet: who launches each kit's first run
        for kit in repo.list_kits(session):
            kit_id = str(kit.id)
            names[kit_id] = kit.name
            if kit.status == "archived" or not _sensor_launches(
                context.instance, session, kit_id, known, claimed.get(kit_id)
            ):
                continue
            if kit_id in requested:
                # a request (e.g. the studio's "create and generate") covers the new kit: one run
                new_ids.append(kit_id)
                continue
            new_ids.append(kit_id)
            run_requests.append(
                dg.RunRequest(
                    partition_key=kit_id,
                    run_key=f"new-kit:{kit_id}",
                    run_config=kit_run_config("new-kit"),
                    tags={
                        "avatar/trigger": "new-kit",
                        "avatar/kit": kit.name[:60],
                        **kit_tags(kit_id, kit.name),
                    },
                )
            )
        for request in pending:
            kit_id = str(request.avatar_kit_id)
            try:
                slots = slot_names_for_scope(request.scope, request.slots)
            except ValueError as exc:  # one bad request must not stop the sensor for all
                context.log.warning(f"generation request {request.id} failed: {exc}")
                fail_request(session, request.id, str(exc))
                continue
            new_take = bool(getattr(request, "new_take", False))
            trigger = "new-take" if new_take else "generation-request"
            if kit_id not in known and kit_id not in new_ids:
                new_ids.append(kit_id)
            run_requests.append(
                dg.RunRequest(
                    partition_key=kit_id,
                    run_key=f"request:{request.id}",
                    asset_selection=selection_for(slots),
                    run_config=kit_run_config(
                        trigger,
                        **({"new_take": True, "take_token": str(request.id)} if new_take else {}),
                    ),
                    tags={
                        "avatar/trigger": trigger,
                        REQUEST_TAG: str(request.id),
                        **kit_tags(kit_id, names.get(kit_id, "")),
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


def _sensor_launches(
    instance: dg.DagsterInstance, session, kit_id: str, known: set[str], claimant: str | None
) -> bool:
    """Whether this tick launches the kit's first run (exactly one launcher per kit).

    A kit someone else claimed (the demo, a command that writes and runs its own kits) is
    theirs. A kit the sensor claimed earlier is requested again until its partition exists (the
    run key keeps that to one run). An unclaimed kit with a partition but no run yet (partition
    first, row later) is claimed like a new one; with a run already, it is left alone.
    """
    if claimant is not None:
        return claimant == kit_intake.SENSOR and kit_id not in known
    if kit_id in known and instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": kit_id}), limit=1
    ):
        return False
    return kit_intake.claim_kit(session, kit_id, kit_intake.SENSOR)


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
                    tags={"avatar/trigger": trigger, **kit_tags(str(kit.id), kit.name)},
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
    "see which images failed and why. A run whose partition names no kit gets none (its report "
    "would fail the same way).",
)
def report_after_failed_gate(context: dg.RunFailureSensorContext, catalog: CatalogResource):
    partition = context.dagster_run.tags.get("dagster/partition")
    if not partition:
        return dg.SkipReason("failed run has no kit partition")
    try:
        with catalog.session() as session:
            kit = lookup_kit(session, partition)
    except KitLookupError as exc:
        return dg.SkipReason(f"no report: {exc}")
    return dg.RunRequest(
        partition_key=partition,
        run_key=f"report-after:{context.dagster_run.run_id}",
        tags={"avatar/trigger": "report-after-failed-gate", **kit.tags},
    )
