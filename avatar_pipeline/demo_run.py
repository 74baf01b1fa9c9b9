"""Run the demo end to end on a persistent Dagster instance, so `dagster dev` shows the runs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg

from avatar_pipeline.settings import Settings


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            verdict = data.metadata.get("verdict")
            if verdict is not None and verdict.value == "unmeasured":
                continue  # not measured: the image waits for the person who approves the kit
            if not data.passed:
                lines.append(
                    f"{data.asset_key.to_user_string()}: {data.check_name} failed "
                    f"({data.description}); kept as a candidate, not canonical"
                )
    return lines


def _gated_keys(result: dg.ExecuteInProcessResult) -> list[dg.AssetKey]:
    """Slots whose check failed (not merely unmeasured) in ``result``."""
    keys = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            verdict = data.metadata.get("verdict")
            if not data.passed and not (verdict is not None and verdict.value == "unmeasured"):
                keys.append(data.asset_key)
    return list(dict.fromkeys(keys))


def intake_demo_kits(catalog: Any, instance: dg.DagsterInstance) -> list[str]:
    """Write the demo kits and their partitions; the demo then runs each kit itself.

    The kits are claimed in their rows' own transaction, so kit_sensor (a daemon running on
    this instance) never also launches them: exactly one run per kit, whatever the order.
    """
    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
    from avatar_pipeline.catalog import kit_intake
    from avatar_pipeline.demo import seed_demo

    with catalog.session() as session:
        kit_ids = [str(k) for k in seed_demo(session)]
        kit_intake.claim_kits(session, kit_ids, kit_intake.DEMO)
    known = set(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, [k for k in kit_ids if k not in known])
    return kit_ids


def run_demo(settings: Settings, *, dagster_home: Path, approve: bool = True) -> int:
    from avatar_pipeline.assets.reports import consistency_report, fleet_consistency
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.errors import InvalidTransitionError
    from avatar_pipeline.definitions import defs
    from avatar_pipeline.resources import resources_for_environment
    from avatar_pipeline.run_hygiene import fail_own_runs, in_process_tags, reap_dead_runs

    resources = resources_for_environment(settings)
    catalog = resources["catalog"]
    instance = dg.DagsterInstance.get()
    kit_ids = intake_demo_kits(catalog, instance)

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    # Record the provider's model versions first, so later upgrades show as stale in the UI.
    defs.resolve_job_def("observe_provider_models_job").execute_in_process(
        instance=instance, run_config=quiet
    )
    job = defs.resolve_job_def("kit_job")
    failed, gated_kits = [], []
    # Runs of an earlier demo that was killed are marked failed and their pool slots freed.
    for dead in reap_dead_runs(instance):
        print(f"run {dead.run_id} of a killed process (pid {dead.pid}) marked failed")
    for kit_id in kit_ids:
        started = time.perf_counter()
        try:
            result = job.execute_in_process(
                instance=instance,
                partition_key=kit_id,
                run_config={"ops": {"kit_images": {"config": {"trigger": "demo"}}}, **quiet},
                raise_on_error=False,
                tags=in_process_tags(),
            )
        except KeyboardInterrupt:
            fail_own_runs(instance, "interrupted (Ctrl-C) during the demo")
            raise
        # A slot the gate rejected (e.g. a "standing" take that reproduced the full body) is
        # drawn again with new seeds, as art ops would re-roll it, at most twice.
        for reroll in (1, 2):
            keys = _gated_keys(result)
            if not keys:
                break
            result = job.execute_in_process(
                instance=instance,
                partition_key=kit_id,
                asset_selection=keys,
                run_config={
                    "ops": {"kit_images": {"config": {"trigger": "demo", "reroll": reroll}}},
                    **quiet,
                },
                raise_on_error=False,
                tags=in_process_tags(),
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

    # Scenes: active kits, a demo user with an episode per character, scenes from snippets
    # (before the reports, so each kit's report shows its scene drift section).
    scene_lines = _demo_scenes(settings, resources, instance)

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
    print("Demo scenes (episode conversation -> scene writer -> kit -> identity vs anchor):")
    print("\n".join(scene_lines))
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
    print(f"  scenes         {objects}/scenes/<user_id>/<episode_id>/ (scene_images rows)")
    print(f"  scene drift    {settings.reports_dir}/scene_drift.html (and each kit's report)")
    print(f"  catalog        {settings.catalog_url}")
    print(
        f"  Dagster UI     DAGSTER_HOME={dagster_home} .venv/bin/dagster dev   "
        "-> http://127.0.0.1:3000 (runs, asset checks, lineage, reports)"
    )
    _print_studio(settings)
    return 1 if failed else 0


def _print_studio(settings: Settings) -> None:
    """How to open the studio: the serve command and a one-time sign-in link for a demo admin."""
    from avatar_pipeline.commands.users import ensure_user, signin_link
    from avatar_pipeline.demo import DEMO_ADMIN_EMAIL as DEMO_ADMIN

    ensure_user(settings, DEMO_ADMIN, admin=True)
    link = signin_link(settings, DEMO_ADMIN)
    minutes = max(1, settings.signin_link_ttl_seconds // 60)
    print(f"  Studio         .venv/bin/avatar-pipeline serve, then open within {minutes} min:")
    print(f"                 {link}")
    print(f"                 (one-time; a new one: avatar-pipeline signin-link {DEMO_ADMIN})")


def _demo_scenes(
    settings: Settings, resources: dict, instance: dg.DagsterInstance | None = None
) -> list[str]:
    """The scene step (avatar_pipeline.scenes.demo) and the fleet's scene_drift asset."""
    import asyncio

    from avatar_pipeline.assets.scene_drift import scene_drift
    from avatar_pipeline.imaging.factory import build_image_service
    from avatar_pipeline.scenes.demo import run_demo_scenes

    image_service = build_image_service(settings)
    try:
        lines = run_demo_scenes(
            settings,
            resources["catalog"].session_factory(),
            resources["object_store"].get_store(),
            image_service,
        )
    finally:
        asyncio.run(image_service.aclose())
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    dg.materialize(
        [scene_drift],
        instance=instance,
        resources=resources,
        run_config=quiet,
        raise_on_error=False,
    )
    return lines
