"""kill -9 of a kit run, then a re-run: no orphans, the pool slot free, stored slots not paid
again. The run is a real Dagster in-process run in a child process, killed with SIGKILL while
the fake Replicate server (in this process, counting creates) is still answering it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from avatar_pipeline.assets.kit_images import PROVIDER_POOL, slot_asset_key
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.orphans import find_orphans
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.instance_home import DAGSTER_YAML_LOCAL
from avatar_pipeline.run_hygiene import held_pool_slots, in_process_tags, reap_dead_runs
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.kit_runs import materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import create_kit
from avatar_pipeline_tests.replicate_kits import FAKE_MEGAPIXELS, kit_rows, replicate_resources

SLOTS = ["anchor_portrait", "anchor_fullbody", "expression:happy", "expression:sad"]
CHILD = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from pathlib import Path
    from avatar_pipeline.assets.kit_images import slot_asset_key
    from avatar_pipeline.generation.slots import ALL_SLOTS
    from avatar_pipeline.run_hygiene import in_process_tags
    from avatar_pipeline_tests.kit_runs import materialize_kit
    from avatar_pipeline_tests.replicate_kits import replicate_resources

    root, url, token, kit = sys.argv[1:5]
    slots = sys.argv[5].split(",")
    resources = replicate_resources(Path(root), url, token)
    selection = [slot_asset_key(s) for s in ALL_SLOTS if s.name in slots]
    with dg.DagsterInstance.get() as instance:
        materialize_kit(resources, instance, kit, selection=selection, tags=in_process_tags())
    """
)


def _selection() -> list[dg.AssetKey]:
    return [slot_asset_key(s) for s in ALL_SLOTS if s.name in SLOTS]


@pytest.mark.timeout(240)
def test_kill_9_mid_run_then_rerun_leaves_no_orphans_and_pays_nothing_twice(
    tmp_path: Path,
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML_LOCAL)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": os.getcwd()}
    with FakeReplicateServer(processing_s=0.6, megapixels=FAKE_MEGAPIXELS) as server:
        resources = replicate_resources(tmp_path, server.base_url, server.token)
        kit = create_kit(resources)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(tmp_path),
                server.base_url,
                server.token,
                kit,
                ",".join(SLOTS),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 150
            while len(kit_rows(resources, kit)) < 2:  # portrait + at least one more stored
                assert child.poll() is None, "the kit run ended before it could be killed"
                assert time.monotonic() < deadline, "the kit run never stored two slots"
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        stored = {
            repo.slot_of(r): r.generation_metadata["fingerprint"] for r in kit_rows(resources, kit)
        }
        assert 2 <= len(stored) < len(SLOTS)
        paid_before = server.create_count()

        with dg.DagsterInstance.from_config(str(home)) as instance:
            (record,) = instance.get_run_records()
            assert record.dagster_run.status == dg.DagsterRunStatus.STARTED  # died silently
            held = held_pool_slots(instance, PROVIDER_POOL)
            reaped = reap_dead_runs(instance)
            assert [r.run_id for r in reaped] == [record.dagster_run.run_id]
            run = instance.get_run_by_id(record.dagster_run.run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
            assert held_pool_slots(instance, PROVIDER_POOL) == []  # the slot is free again
            assert held in ([], [run.run_id])

            result = materialize_kit(
                resources, instance, kit, selection=_selection(), tags=in_process_tags()
            )
        rows = kit_rows(resources, kit)
        fingerprints = {repo.slot_of(r): r.generation_metadata["fingerprint"] for r in rows}
        # stored slots were not paid again (same rows); only the rest was created
        assert all(fingerprints[s] == fp for s, fp in stored.items())
        assert server.create_count() - paid_before <= len(SLOTS) - len(stored)
        assert sorted(fingerprints) == sorted(SLOTS) and len(rows) == len(SLOTS)
        report = find_orphans(
            resources["catalog"].session_factory(), resources["object_store"].get_store()
        )
        assert report.clean, report.lines()
        assert result.run_id
