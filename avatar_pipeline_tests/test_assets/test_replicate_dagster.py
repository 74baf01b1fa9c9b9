"""The kit job over the fake Replicate server: a provider failure is a generation failure (no
check fails for it), materialisations stream per slot, the upgrade canary runs in kit_images,
and the model-upgrade schedule compares real versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import avatar_pipeline_tests.fakes.replicate_server as fake
from avatar_pipeline.assets.kit_images import slot_asset_key
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.schedules import model_upgrade_schedule
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.kit_runs import check_evaluations, materialize_kit, materialized_keys
from avatar_pipeline_tests.pipeline_fixtures import create_kit
from avatar_pipeline_tests.replicate_kits import FAKE_MEGAPIXELS, kit_rows, replicate_resources

FLUX11 = "black-forest-labs/flux-1.1-pro"
KONTEXT = "black-forest-labs/flux-kontext-pro"
ANCHOR_KEYS = [slot_asset_key(s) for s in ALL_SLOTS if s.name.startswith("anchor_")]


@pytest.fixture
def server() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(processing_s=0.02, megapixels=FAKE_MEGAPIXELS) as running:
        yield running


@pytest.fixture
def resources(tmp_path: Path, server: FakeReplicateServer) -> dict[str, Any]:
    return replicate_resources(tmp_path, server.base_url, server.token)


def test_a_provider_failure_fails_generation_not_a_check(
    resources: dict[str, Any], server: FakeReplicateServer, instance: dg.DagsterInstance
) -> None:
    kit = create_kit(resources)
    # the portrait succeeds; every prediction of the full body fails (KeyError: 'sample')
    server.schedule(None, *[fake.KEYERROR_SAMPLE] * 3)
    result = materialize_kit(resources, instance, kit, selection=ANCHOR_KEYS)
    assert not result.success
    assert materialized_keys(result) == {"anchor_portrait"}  # the other slot kept its work
    checks = check_evaluations(result)
    assert ("anchor_portrait", "identity") in checks
    assert not any(key == "anchor_fullbody" for key, _ in checks)  # nothing judged, no fail
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.user_failure_data.metadata["failed_slots"].value)
    assert "anchor_fullbody (failed)" in text and "KeyError: 'sample'" in text
    assert server.create_count() == 4  # 1 portrait + 3 bounded attempts

    # re-run: only the missing slot is paid for
    again = materialize_kit(resources, instance, kit, selection=ANCHOR_KEYS)
    assert again.success and server.create_count() == 5


def test_upgrade_canary_in_the_kit_job_writes_the_comparison_report(
    resources: dict[str, Any], server: FakeReplicateServer, instance: dg.DagsterInstance
) -> None:
    kit = create_kit(resources)
    assert materialize_kit(resources, instance, kit, selection=ANCHOR_KEYS).success
    old = {r.id for r in kit_rows(resources, kit) if r.is_canonical}
    for model in (FLUX11, KONTEXT):
        server.bump_version(model)
    result = materialize_kit(
        resources, instance, kit, selection=ANCHOR_KEYS, config={"trigger": "model-upgrade"}
    )
    assert result.success
    new = {r.id for r in kit_rows(resources, kit) if r.is_canonical}
    assert len(new) == 2 and not new & old  # the whole set moved
    reports = Path(resources["consistency"].reports_dir) / kit
    (html,) = reports.glob("upgrade-*.html")
    assert "promoted" in html.read_text()
    assert (reports / "upgrades.json").exists()


def _schedule(instance: dg.DagsterInstance, resources: dict[str, Any]) -> Any:
    with dg.build_schedule_context(
        instance=instance,
        resources={"catalog": resources["catalog"], "image_service": resources["image_service"]},
    ) as context:
        return model_upgrade_schedule(context)


def test_upgrade_schedule_compares_real_versions(
    resources: dict[str, Any], server: FakeReplicateServer, instance: dg.DagsterInstance
) -> None:
    kit = create_kit(resources)
    assert materialize_kit(resources, instance, kit, selection=ANCHOR_KEYS).success
    # "hidden" is what every prediction said; the schedule still sees nothing to do
    assert isinstance(_schedule(instance, resources), dg.SkipReason)
    assert isinstance(_schedule(instance, resources), dg.SkipReason)  # not every night
    server.bump_version(KONTEXT)  # the edit model: the full body and the poses made from it
    (run,) = _schedule(instance, resources)
    assert run.partition_key == kit and run.tags["avatar/trigger"] == "model-upgrade"
    selected = {k.to_user_string() for k in run.asset_selection}
    assert "anchor_fullbody" in selected and "anchor_portrait" not in selected
