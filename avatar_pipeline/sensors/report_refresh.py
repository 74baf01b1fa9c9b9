"""Keep reports fresh: a kit's report is re-built whenever what it shows changed in the catalog
(an image made or promoted by any run, a person's choice or rejection in the studio, an
approval, a new kit), and the fleet index after any of those.

Many of these changes happen outside Dagster (the studio and the API write the catalog), so
declarative automation cannot see them; this sensor compares a fingerprint of each kit's catalog
state (``catalog.kit_state``) with the one its latest report recorded.
"""

import json

import dagster as dg

from avatar_pipeline.assets.partitions import (
    KITS_PARTITION_NAME,
    RANGE_START,
    kit_tags,
    kits_of_run,
)
from avatar_pipeline.assets.reports import STATE_KEY, fleet_state
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.kit_state import kit_state_fingerprints
from avatar_pipeline.jobs import fleet_report_job, kit_job, kit_report_job
from avatar_pipeline.resources import CatalogResource

REPORT_KEY = dg.AssetKey(["consistency_report"])
FLEET_KEY = dg.AssetKey(["fleet_consistency"])
REFRESH_TRIGGER = "report-refresh"


def _recorded_state(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str:
    """The catalog fingerprint the newest materialisation of ``key`` (partition) recorded."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=1,
    ).records
    if not records:
        return ""
    materialization = records[0].asset_materialization
    value = materialization.metadata.get(STATE_KEY) if materialization else None
    return str(getattr(value, "value", value) or "")


def _busy_kits(instance: dg.DagsterInstance) -> set[str]:
    """Kit partitions with a run queued or in progress that writes their report: a kit or
    report run of one kit, or a run over a range of kits (a fleet backfill's runs carry
    ``consistency_report`` for their kits)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        )
    )
    jobs = {kit_job.name, kit_report_job.name}
    order = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    busy: set[str] = set()
    for r in runs:
        if r.job_name in jobs or RANGE_START in r.tags:
            busy.update(kits_of_run(r.tags, order))
    return busy


@dg.sensor(
    jobs=[kit_report_job, fleet_report_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-build a kit's report when its images, review state, prompts or status "
    "changed since the report was written (any run, the studio, an approval), and the fleet "
    "index after any kit changed.",
)
def report_refresh_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    with catalog.session() as session:
        kits = {str(k.id): k for k in repo.list_kits(session)}
        names = {kit_id: kit.name for kit_id, kit in kits.items()}
        fingerprints = kit_state_fingerprints(session)
    busy = _busy_kits(context.instance)
    requests: list[dg.RunRequest] = []
    for kit_id, state in sorted(fingerprints.items()):
        if kit_id not in known or seen.get(kit_id) == state:
            continue
        if kit_id in busy:
            continue  # its running kit/report run writes the report; look again next tick
        seen[kit_id] = state
        if _recorded_state(context.instance, REPORT_KEY, kit_id) == state:
            continue
        requests.append(
            dg.RunRequest(
                job_name=kit_report_job.name,
                partition_key=kit_id,
                run_key=f"{REFRESH_TRIGGER}:{kit_id}:{state}",
                tags={"avatar/trigger": REFRESH_TRIGGER, **kit_tags(kit_id, names[kit_id])},
            )
        )
    live = {k: v for k, v in fingerprints.items() if kits[k].status != "archived"}
    fleet = fleet_state(live)
    if seen.get("__fleet__") != fleet and not busy:
        seen["__fleet__"] = fleet
        if _recorded_state(context.instance, FLEET_KEY, None) != fleet:
            requests.append(
                dg.RunRequest(
                    job_name=fleet_report_job.name,
                    run_key=f"{REFRESH_TRIGGER}:fleet:{fleet}",
                    tags={"avatar/trigger": REFRESH_TRIGGER},
                )
            )
    cursor = json.dumps(seen, sort_keys=True)
    if not requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("every report matches the catalog"), cursor=cursor
        )
    return dg.SensorResult(run_requests=requests, cursor=cursor)
