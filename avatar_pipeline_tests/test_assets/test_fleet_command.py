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
    launch_fleet_runs,
    resolve_kits,
)
from avatar_pipeline.commands.fleet_runs_launch import kit_ranges
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources

ROOT = Path(__file__).resolve().parents[2]


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


def test_kit_ranges_follow_partition_order_and_break_at_kits_outside_the_fleet() -> None:
    order = ["a", "b", "c", "d", "e", "f", "g"]
    assert kit_ranges(order, ["c", "a", "b", "e", "f", "g"], 2) == [
        ["a", "b"],
        ["c"],  # d is not in the fleet: a range a..e would re-generate it too
        ["e", "f"],
        ["g"],
    ]
    assert kit_ranges(order, ["g", "f"], 16) == [["f", "g"]]
    with pytest.raises(ValueError, match="zz"):
        kit_ranges(order, ["a", "zz"], 16)


def test_regenerate_queues_one_kit_job_run_per_range_of_kits(tmp_path: Path) -> None:
    queued = {"run_coordinator": {"module": "dagster.core.run_coordinator",
                                  "class": "QueuedRunCoordinator"}}  # fmt: skip
    with dg.instance_for_test(overrides=queued) as instance:
        resources = make_resources(tmp_path)
        kits = [create_kit(resources, f"Ranged {n}", character=f"Ranged {n}") for n in range(5)]
        fleet_id, run_ids = launch_fleet_runs(
            instance, resources["catalog"], kits, workspace=str(ROOT / "workspace.yaml"), per_run=2
        )
        runs = [instance.get_run_by_id(r) for r in run_ids]
        assert len(runs) == 3  # 2 + 2 + 1 kits (the last one an ordinary one-partition run)
        order = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
        covered: list[str] = []
        for run in runs:
            assert run.job_name == "kit_job" and run.status == dg.DagsterRunStatus.QUEUED
            assert run.tags["avatar/fleet"] == fleet_id
            assert run.tags["dagster/priority"] == "5"
            assert run.remote_job_origin.location_name  # the daemon finds it by this name
            start = run.tags.get("dagster/asset_partition_range_start")
            end = run.tags.get("dagster/asset_partition_range_end")
            if start is None:
                covered.append(run.tags["dagster/partition"])
            else:
                covered += order[order.index(start) : order.index(end) + 1]
        assert sorted(covered) == sorted(kits)  # every kit exactly once, nothing else
        with resources["catalog"].session() as session:
            assert set(kits) <= set(kit_intake.claims(session))  # kit_sensor leaves them alone
        progress = fleet_progress(instance, fleet_id)
        assert (progress.total, progress.done, progress.runs) == (5, [], len(runs))
        assert progress.status == "REQUESTED"
        for run in runs:  # the runs end (here: fail): the fleet is over, its kits failed
            instance.report_run_failed(run)
        progress = fleet_progress(instance, fleet_id)
        assert progress.status == "COMPLETED_FAILED" and progress.failed == sorted(kits)
        assert progress.finished and progress.failed_runs == len(runs)
