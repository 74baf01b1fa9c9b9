"""``avatar-pipeline fleet regenerate`` submits one asset backfill over the kits' partitions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
from avatar_pipeline.catalog import kit_intake
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.cli import main
from avatar_pipeline.commands.fleet import (
    FleetError,
    FleetProgress,
    fleet_asset_keys,
    fleet_progress,
    image_asset_keys,
    launch_fleet_backfill,
    resolve_kits,
)
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources


def test_regenerate_submits_one_backfill_of_every_image_of_the_kits(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    resources = make_resources(tmp_path)
    kits = [create_kit(resources, f"Fleet {n}", character=f"Fleet {n}") for n in range(3)]
    archived = create_kit(resources, "Fleet archived", character="Fleet archived")
    with resources["catalog"].session() as session:
        repo.archive_kit(session, archived)
        assert set(resolve_kits(session, None, all_kits=True)) == set(kits)
        assert resolve_kits(session, ["Fleet 1", kits[1]], all_kits=False) == [kits[1]]
        with pytest.raises(FleetError, match="archived"):
            resolve_kits(session, ["Fleet archived"], all_kits=False)
        with pytest.raises(FleetError):
            resolve_kits(session, ["no such kit"], all_kits=False)

    backfill_id = launch_fleet_backfill(instance, resources["catalog"], kits)

    # partitions exist, and the kits are claimed so kit_sensor does not also launch them
    assert set(kits) <= set(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    with resources["catalog"].session() as session:
        assert {k: v for k, v in kit_intake.claims(session).items() if k in kits} == dict.fromkeys(
            kits, "fleet"
        )
    backfill = instance.get_backfill(backfill_id)
    targets = {
        (akpk.asset_key, akpk.partition_key)
        for akpk in backfill.asset_backfill_data.target_subset.iterate_asset_partitions()
    }
    # every image asset and the kit's report, for every kit
    assert targets == {(key, kit) for key in fleet_asset_keys() for kit in kits}
    assert dg.AssetKey(["consistency_report"]) in fleet_asset_keys()
    assert set(image_asset_keys()) < set(fleet_asset_keys())
    assert backfill.tags["avatar/trigger"] == "fleet-regenerate"
    assert backfill.tags["dagster/priority"] == "5"  # queued ahead of report runs

    progress = fleet_progress(instance, backfill_id)
    assert (progress.total, progress.done, progress.failed) == (3, [], [])
    assert "0/3 kits" in progress.bar()


def test_progress_bar_counts_done_and_failed_kits() -> None:
    progress = FleetProgress("b", "COMPLETED_FAILED", total=4, done=["a", "b"], failed=["c"])
    assert progress.finished
    assert progress.bar(width=8) == "[######..] 3/4 kits, 1 failed (0 runs, completed_failed)"


def test_the_command_needs_kits_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    assert main(["fleet", "regenerate"]) == 2
    assert "--kits" in capsys.readouterr().err
    assert main(["fleet", "regenerate", "--kits", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
