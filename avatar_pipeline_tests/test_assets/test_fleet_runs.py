"""A run over a range of kit partitions produces every kit of the range, each recorded per kit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg

from avatar_pipeline.assets.fleet_runs import FLEET_BACKFILL_POLICY, FLEET_TAG
from avatar_pipeline.assets.kit_images import kit_images
from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
from avatar_pipeline.assets.provider_models import provider_models
from avatar_pipeline.assets.reports import STATE_KEY, consistency_report
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.kit_state import kit_state_fingerprints
from avatar_pipeline.commands.fleet import rejected_kits
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, ProviderResult
from avatar_pipeline.run_hygiene import kits_in_progress
from avatar_pipeline.sensors.report_refresh import _busy_kits
from avatar_pipeline_tests.pipeline_fixtures import (
    CountingOfflineImageServiceResource,
    CountingProvider,
    create_kit,
    make_resources,
    provider_calls,
)

SLOTS = ["anchor_portrait", "anchor_fullbody", "expressions/happy"]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
REPORT = dg.AssetKey(["consistency_report"])


def _range_run(resources, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    selection = [dg.AssetKey(s.split("/")) for s in SLOTS] + [REPORT]
    return dg.materialize(
        [provider_models, kit_images, consistency_report],
        instance=instance,
        resources=resources,
        selection=selection,
        tags={RANGE_START: first, RANGE_END: last},
        run_config={"ops": {"kit_images": {"config": {"trigger": "fleet"}}}},
        raise_on_error=False,
    )


def test_the_kit_asset_batches_kits_per_backfill_run() -> None:
    policy = kit_images.backfill_policy
    assert policy == FLEET_BACKFILL_POLICY
    # the report shares the policy, so a fleet backfill writes reports in the same runs
    assert consistency_report.backfill_policy == FLEET_BACKFILL_POLICY
    assert policy.max_partitions_per_run is not None and policy.max_partitions_per_run > 1


def test_a_multi_kit_run_materialises_each_kits_partitions(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = make_resources(tmp_path, tag="fleet-range")
    names = ["Fleet A", "Fleet B", "Fleet C", "Fleet D"]
    kit_ids = [create_kit(resources, name, character=name) for name in names]
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, kit_ids)

    # the first three kits in one run; the fourth is outside the range and must stay untouched
    result = _range_run(resources, instance, kit_ids[0], kit_ids[2])
    assert result.success, result.get_step_failure_events()
    assert provider_calls("fleet-range") == 3 * len(SLOTS)  # one call per slot per kit

    with resources["catalog"].session() as session:
        for kit_id in kit_ids[:3]:
            canonical = repo.canonical_assets(session, kit_id)
            assert {"anchor_portrait", "anchor_fullbody"} <= set(canonical)
        assert repo.canonical_assets(session, kit_ids[3]) == {}

    for slot in SLOTS:
        key = dg.AssetKey(slot.split("/"))
        records = instance.fetch_materializations(key, limit=100).records
        by_partition = {r.partition_key: r for r in records}
        assert set(by_partition) == set(kit_ids[:3])  # one per kit, none for the fourth
        with resources["catalog"].session() as session:
            for kit_id in kit_ids[:3]:
                meta = by_partition[kit_id].asset_materialization.metadata
                asset_id = meta["asset_id"].value
                # each kit's materialisation carries that kit's own image
                asset = repo.get_asset(session, asset_id)
                assert str(asset.avatar_kit_id) == kit_id

    # one evaluation per check for the run, listing every kit's verdict
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert evaluations
    for evaluation in evaluations:
        kits = evaluation.metadata["kits"].value
        assert set(kits) == set(kit_ids[:3])

    # the same run wrote each kit's report, recorded per kit partition with that kit's state
    reports = {
        r.partition_key: r.asset_materialization.metadata
        for r in instance.fetch_materializations(REPORT, limit=100).records
    }
    assert set(reports) == set(kit_ids[:3])
    for kit_id in kit_ids[:3]:
        assert reports[kit_id]["kit_id"].value == kit_id
        assert reports[kit_id][STATE_KEY].value
        assert (Path(resources["consistency"].reports_dir) / kit_id).is_dir()
    assert not (Path(resources["consistency"].reports_dir) / kit_ids[3]).exists()
    with resources["catalog"].session() as session:
        states = kit_state_fingerprints(session)
    # nothing changed since: the report sensor finds these reports fresh
    assert all(reports[k][STATE_KEY].value == states[k] for k in kit_ids[:3])


def test_the_report_sensor_counts_every_kit_of_a_queued_range_run_as_busy(
    instance: dg.DagsterInstance,
) -> None:
    kits = ["k1", "k2", "k3", "k4"]
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, kits)
    instance.create_run_for_job(
        dg.Definitions(jobs=[_noop_job]).resolve_job_def("noop"),
        tags={RANGE_START: "k2", RANGE_END: "k3"},
    )
    assert _busy_kits(instance) == {"k2", "k3"}
    # and the orphan sweep leaves the objects of every kit of the range alone
    assert kits_in_progress(instance) == {"k2", "k3"}


@dg.op
def _noop() -> None:
    pass


@dg.job(name="noop")
def _noop_job() -> None:
    _noop()


class _CopyingProvider(CountingProvider):
    """The offline provider, except that edits whose prompt names ``marker`` hand back their
    first reference unchanged (a lazy model's copy)."""

    def __init__(self, inner: ImageProvider, tag: str, marker: str):
        super().__init__(inner, tag)
        self.marker = marker

    async def edit(self, request: EditRequest) -> ProviderResult:
        result = await super().edit(request)
        if self.marker in request.prompt and "happy" in request.prompt:
            return replace(result, images=(request.reference_images[0],))
        return result


class _CopyingServiceResource(CountingOfflineImageServiceResource):
    marker: str = ""

    def build_provider(self) -> ImageProvider:
        return _CopyingProvider(OfflineProvider(latency_seconds=0.0), self.tag, self.marker)


VICTIM = "lazy-model-victim"  # in a kit's appearance: its "happy" edit comes back a copy
HAPPY = dg.AssetKey(["expressions", "happy"])


def _copying_resources(tmp_path: Path, tag: str) -> dict:
    service = _CopyingServiceResource(
        cache_dir=str(tmp_path / "image_cache"), image_size=256, tag=tag, marker=VICTIM
    )
    return make_resources(tmp_path, image_service=service)


def _victim(resources: dict, name: str) -> str:
    appearance = f"{VICTIM}, young man, short red hair, green hoodie"
    return create_kit(resources, name, character=name, appearance_prompt=appearance)


def _run_happy(resources, instance, **kwargs: object) -> dg.ExecuteInProcessResult:
    """The portrait, the happy expression and the report, as a fleet run (``kwargs``: the
    partition key or the range tags)."""
    return dg.materialize(
        [provider_models, kit_images, consistency_report],
        instance=instance,
        resources=resources,
        selection=[dg.AssetKey(["anchor_portrait"]), HAPPY, REPORT],
        run_config={"ops": {"kit_images": {"config": {"trigger": "fleet"}}}},
        raise_on_error=False,
        **kwargs,
    )


def _copy_check(result: dg.ExecuteInProcessResult) -> Any:
    (check,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "not_a_copy"
        and e.event_specific_data.asset_key == HAPPY
    ]
    return check


def test_a_rejection_in_a_multi_kit_run_names_the_kit_and_every_report_is_still_written(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = _copying_resources(tmp_path, "fleet-copy")
    kit_ids = [create_kit(resources, "Fleet ok", character="Fleet ok")]
    kit_ids.append(_victim(resources, "Fleet copied"))
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, kit_ids)
    result = _run_happy(resources, instance, tags={RANGE_START: kit_ids[0], RANGE_END: kit_ids[1]})
    # the run succeeds: the rejection is a WARN naming the kit, not a blocking ERROR
    assert result.success, result.get_step_failure_events()
    check = _copy_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rejected_kits"].value == ["Fleet copied"]
    assert "Fleet copied" in check.description and "not promoted" in check.description
    # what `fleet regenerate --wait` lists at the end
    assert rejected_kits(instance, [result.run_id]) == ["Fleet copied"]
    # the copy is stored as a failed candidate, never promoted; the other kit's image is kept
    with resources["catalog"].session() as session:
        assert "expression:happy" not in repo.canonical_assets(session, kit_ids[1])
        copied = [a for a in repo.list_assets(session, kit_ids[1]) if a.expression == "happy"]
        assert copied and not any(a.is_canonical for a in copied)
        assert any(a.expression == "happy" for a in repo.list_assets(session, kit_ids[0]))
    # both kits' reports were written by the same run
    reports = {r.partition_key for r in instance.fetch_materializations(REPORT, limit=10).records}
    assert reports == set(kit_ids)


def test_a_fleet_run_of_one_kit_warns_on_a_rejection_and_writes_the_report(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = _copying_resources(tmp_path, "fleet-one")
    kit_id = _victim(resources, "Fleet of one")
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, [kit_id])
    # what `fleet regenerate` puts on a one-kit run: its partition and the fleet tag
    result = _run_happy(resources, instance, partition_key=kit_id, tags={FLEET_TAG: "fleet-1"})
    assert result.success, result.get_step_failure_events()
    check = _copy_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rejected_kits"].value == ["Fleet of one"]
    reports = {r.partition_key for r in instance.fetch_materializations(REPORT, limit=10).records}
    assert reports == {kit_id}
