"""Run the demo end to end on a persistent Dagster instance, so `dagster dev` shows the runs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import dagster as dg

from avatar_pipeline.settings import Settings


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                lines.append(
                    f"{data.asset_key.to_user_string()}: {data.check_name} failed "
                    f"({data.description}); kept as a candidate, not canonical"
                )
    return lines


def run_demo(settings: Settings, *, dagster_home: Path, approve: bool = True) -> int:
    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
    from avatar_pipeline.assets.reports import consistency_report, fleet_consistency
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.errors import InvalidTransitionError
    from avatar_pipeline.definitions import defs
    from avatar_pipeline.demo import seed_demo
    from avatar_pipeline.resources import resources_for_environment

    resources = resources_for_environment(settings)
    catalog = resources["catalog"]
    with catalog.session() as session:
        kit_ids = [str(k) for k in seed_demo(session)]

    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, [k for k in kit_ids if k not in known])

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    # Record the provider's model versions first, so later upgrades show as stale in the UI.
    defs.resolve_job_def("observe_provider_models_job").execute_in_process(
        instance=instance, run_config=quiet
    )
    job = defs.resolve_job_def("kit_job")
    failed, gated_kits = [], []
    for kit_id in kit_ids:
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            partition_key=kit_id,
            run_config={"ops": {"kit_images": {"config": {"trigger": "demo"}}}, **quiet},
            raise_on_error=False,
        )
        elapsed = time.perf_counter() - started
        gated = _failed_checks(result)
        verdict = "succeeded" if result.success else "stopped by the consistency gate"
        print(f"kit {kit_id}: run {result.run_id} {verdict} in {elapsed:.1f}s")
        for line in gated:
            print(f"    {line}")
        if gated:
            gated_kits.append(kit_id)
        if not result.success and not gated:
            failed.append(kit_id)

    with catalog.session() as session:
        for kit_id in kit_ids:
            kit = repo.get_kit(session, uuid.UUID(kit_id))
            if approve and kit.status == "draft":
                try:
                    repo.approve_kit(session, kit.id)
                except InvalidTransitionError as exc:
                    print(f"kit {kit.name} not approved: {exc}")

    # A run stopped by the gate skipped its report step (in `dagster dev` the
    # report_after_failed_gate sensor does this), and approval changed the kits' status.
    report_job = defs.resolve_job_def("kit_report_job")
    for kit_id in kit_ids:
        report_job.execute_in_process(instance=instance, partition_key=kit_id, run_config=quiet)
    dg.materialize(
        [consistency_report, fleet_consistency],
        selection=[fleet_consistency],
        instance=instance,
        resources=resources,
        run_config=quiet,
    )

    with catalog.session() as session:
        rows = [
            (repo.get_kit(session, uuid.UUID(k)), len(repo.canonical_assets(session, uuid.UUID(k))))
            for k in kit_ids
        ]
        summary = [f"  {kit.name:14} {kit.status:7} {n:2} canonical  {kit.id}" for kit, n in rows]

    objects = settings.local_store_root if settings.storage_backend == "local" else "(S3)"
    print()
    print("Demo kits:")
    print("\n".join(summary))
    print()
    print("Where to look:")
    print(f"  images         {objects}/avatars/<kit_id>/anchors|expressions|poses/")
    print(
        f"  kit reports    {settings.reports_dir}/<kit_id>/report.html "
        "(and report.json, contact_sheet.png)"
    )
    print(f"  fleet summary  {settings.reports_dir}/index.html")
    print(f"  catalog        {settings.catalog_url}")
    print(
        f"  Dagster UI     DAGSTER_HOME={dagster_home} .venv/bin/dagster dev   "
        "-> http://127.0.0.1:3000 (runs, asset checks, lineage, reports)"
    )
    return 1 if failed else 0
