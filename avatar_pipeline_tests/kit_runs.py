"""Materialise a kit the way the kit job does, for tests."""

from __future__ import annotations

from typing import Any

import dagster as dg

from avatar_pipeline.assets.kit_images import kit_images
from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
from avatar_pipeline.assets.provider_models import provider_models
from avatar_pipeline.assets.reports import consistency_report

KIT_ASSETS = [provider_models, kit_images, consistency_report]


def materialize_kit(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    kit_id: str,
    *,
    selection: list[dg.AssetKey] | None = None,
    config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition(KITS_PARTITION_NAME, kit_id):
        instance.add_dynamic_partitions(KITS_PARTITION_NAME, [kit_id])
    return dg.materialize(
        KIT_ASSETS,
        instance=instance,
        partition_key=kit_id,
        resources=resources,
        selection=selection,
        run_config={"ops": {"kit_images": {"config": config or {}}}},
        tags=tags,
        raise_on_error=False,
    )


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """(asset key, check name) -> passed, for every check evaluated in the run."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            out[(data.asset_key.to_user_string(), data.check_name)] = data.passed
    return out


def check_verdicts(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], str]:
    """(asset key, check name) -> "pass" | "fail" | "unmeasured" (from the check's metadata;
    an unmeasured check is a non-passing WARN result)."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            verdict = data.metadata.get("verdict")
            text = verdict.value if verdict is not None else ("pass" if data.passed else "fail")
            if text == "unmeasured":
                assert not data.passed and data.severity == dg.AssetCheckSeverity.WARN
            out[(data.asset_key.to_user_string(), data.check_name)] = text
    return out


def approve(resources: dict[str, Any], kit_id: str) -> None:
    """Approve the kit as a person does (promotes its pending, not-failed candidates)."""
    import uuid

    from avatar_pipeline.catalog import repository as repo

    with resources["catalog"].session() as session:
        repo.approve_kit(session, uuid.UUID(kit_id))


def materialized_keys(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


def run_checks(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    kit_id: str,
    checks: list[dg.AssetCheckKey],
) -> dg.ExecuteInProcessResult:
    """Execute only some checks of a kit: a checks-only subset of kit_job, as the UI launches."""
    from avatar_pipeline.jobs import kit_job

    job = dg.Definitions(assets=KIT_ASSETS, jobs=[kit_job], resources=resources).resolve_job_def(
        "kit_job"
    )
    subset = job.get_subset(asset_selection=set(), asset_check_selection=set(checks))
    return subset.execute_in_process(instance=instance, partition_key=kit_id, raise_on_error=False)
