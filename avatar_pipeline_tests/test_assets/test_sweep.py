"""The sweep: orphan objects and orphan rows listed (dry run by default) and removed (--apply),
by the CLI command and by the Dagster job."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from avatar_pipeline.catalog.orphans import find_orphans
from avatar_pipeline.cli import main
from avatar_pipeline.storage import keys
from avatar_pipeline.sweep_job import sweep_job
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources
from avatar_pipeline_tests.replicate_kits import kit_generator, kit_rows


def _kit_with_orphans(root: Path) -> tuple[dict[str, Any], str, str, str]:
    resources = make_resources(root)
    kit = create_kit(resources)
    asyncio.run(kit_generator(resources).run(kit, ["anchor_portrait", "anchor_fullbody"]))
    store = resources["object_store"].get_store()
    # killed between the object write and the row: an object no row references
    orphan_path = keys.avatar_asset_path(kit, "expression", str(uuid.uuid4()), "happy")
    store.put("avatars", orphan_path, b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")
    # an object lost under its row (deleted by hand, a bucket restore...)
    fullbody = next(r for r in kit_rows(resources, kit) if r.asset_type == "anchor_fullbody")
    store.delete("avatars", fullbody.storage_path)
    return resources, kit, orphan_path, str(fullbody.id)


def test_sweep_command_is_a_dry_run_until_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    resources, kit, orphan_path, orphan_row = _kit_with_orphans(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AVATAR_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    monkeypatch.setenv("AVATAR_STORAGE_LOCAL_ROOT", str(tmp_path / "objects"))
    monkeypatch.setenv("AVATAR_SIGNING_SECRET", "test-secret-not-default")

    assert main(["sweep"]) == 0
    out = capsys.readouterr().out
    assert orphan_path in out and orphan_row in out and "dry run: nothing removed" in out
    store = resources["object_store"].get_store()
    assert store.exists("avatars", orphan_path)  # nothing changed
    assert orphan_row in {str(r.id) for r in kit_rows(resources, kit)}

    assert main(["sweep", "--apply"]) == 0
    assert "removed 1 object(s) and 1 row(s)" in capsys.readouterr().out
    assert not store.exists("avatars", orphan_path)
    rows = kit_rows(resources, kit)
    assert orphan_row not in {str(r.id) for r in rows} and len(rows) == 1
    factory = resources["catalog"].session_factory()
    assert find_orphans(factory, store).clean
    assert main(["sweep"]) == 0 and "no orphans" in capsys.readouterr().out


def test_sweep_job_lists_then_removes(tmp_path: Path) -> None:
    resources, _kit, orphan_path, orphan_row = _kit_with_orphans(tmp_path)
    job_resources = {k: resources[k] for k in ("catalog", "object_store")}
    with dg.instance_for_test() as instance:
        dry = sweep_job.execute_in_process(instance=instance, resources=job_resources)
        summary = dry.output_for_node("sweep_orphans")
        assert summary["orphan_objects"] == [orphan_path]
        assert summary["orphan_rows"] == [orphan_row] and not summary["removed_objects"]
        applied = sweep_job.execute_in_process(
            instance=instance,
            resources=job_resources,
            run_config={"ops": {"sweep_orphans": {"config": {"apply": True}}}},
        )
        done = applied.output_for_node("sweep_orphans")
        assert done["removed_objects"] == [orphan_path] and done["removed_rows"] == [orphan_row]
    factory = resources["catalog"].session_factory()
    assert find_orphans(factory, resources["object_store"].get_store()).clean
