"""Kits by name in Dagster, per-kit asset checks, numeric scores and links, approval by name."""

from __future__ import annotations

import uuid

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from avatar_pipeline.approval import approve_kit_job
from avatar_pipeline.assets.partitions import KIT_ID_TAG, KIT_NAME_TAG
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.sensors import report_after_failed_gate
from avatar_pipeline_tests.kit_runs import check_evaluations, materialize_kit, run_checks
from avatar_pipeline_tests.pipeline_fixtures import create_kit, provider_calls

PORTRAIT = dg.AssetKey(["anchor_portrait"])
FULLBODY = dg.AssetKey(["anchor_fullbody"])
REPORT = dg.AssetKey(["consistency_report"])


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None:
            parts.append(data.user_failure_data.description or "")
        if data.error is not None:
            parts.append(data.error.message)
    return "\n".join(parts)


def _rows(pipeline, kit_id: str) -> int:
    with pipeline["catalog"].session() as session:
        return len(repo.list_assets(session, uuid.UUID(kit_id), include_inactive=True))


def test_a_unique_kit_name_as_partition_key_works_on_that_kit(pipeline, instance):
    kit_id = create_kit(pipeline, name="Mika Default", character="Mika")
    result = materialize_kit(pipeline, instance, "mika-default", selection=[PORTRAIT])
    assert result.success
    tags = instance.get_run_by_id(result.run_id).tags
    assert (tags[KIT_ID_TAG], tags[KIT_NAME_TAG]) == (kit_id, "Mika Default")
    with pipeline["catalog"].session() as session:
        assert "anchor_portrait" in repo.canonical_assets(session, uuid.UUID(kit_id))
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any("is not a kit id; it names kit 'Mika Default'" in m for m in logs)


def test_a_key_that_names_no_kit_stops_clearly_and_gets_no_second_run(pipeline, instance):
    kit_id = create_kit(pipeline, name="Mika Default", character="Mika")
    calls = provider_calls(pipeline["image_service"].tag)
    result = materialize_kit(pipeline, instance, "mika-summer", selection=[PORTRAIT, REPORT])
    assert not result.success
    text = _failure_text(result)
    assert "'mika-summer' is not a kit id and names no kit" in text
    assert f"'Mika Default' (id {kit_id}, draft)" in text
    assert "badly formed hexadecimal" not in text
    assert provider_calls(pipeline["image_service"].tag) == calls and _rows(pipeline, kit_id) == 0

    # report_after_failed_gate would only fail the same way: it launches nothing
    context = dg.build_run_status_sensor_context(
        sensor_name="report_after_failed_gate",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"catalog": pipeline["catalog"]},
    ).for_run_failure()
    skip = report_after_failed_gate(context)
    assert isinstance(skip, dg.SkipReason)
    assert "names no kit" in skip.skip_message


def test_an_ambiguous_name_lists_every_kit_with_it(pipeline, instance):
    first = create_kit(pipeline, name="Mika Default", character="Mika")
    with pipeline["catalog"].session() as session:
        other = repo.create_character(session, name="Mika (old)")
        second = repo.create_kit(
            session,
            name="Mika Default",
            appearance_prompt="girl, pink twin tails",
            style_prompt="anime",
            character_id=other.id,
        ).id
    result = materialize_kit(pipeline, instance, "Mika Default", selection=[PORTRAIT])
    assert not result.success
    text = _failure_text(result)
    assert "2 kits have that name" in text and first in text and str(second) in text


def test_execute_checks_runs_per_kit_and_marks_nothing_else_failed(pipeline, instance):
    kits = {
        name: create_kit(pipeline, name=name, character=name.split()[0])
        for name in ("Yuki Default", "Kenji Default")
    }
    for kit_id in kits.values():
        run = materialize_kit(pipeline, instance, kit_id, selection=[PORTRAIT, FULLBODY, REPORT])
        assert run.success, _failure_text(run)
    yuki, kenji = kits["Yuki Default"], kits["Kenji Default"]
    identity = dg.AssetCheckKey(FULLBODY, "identity")
    history = instance.event_log_storage.get_asset_check_execution_history
    kenji_before = [r for r in history(identity, limit=10) if r.partition == kenji]

    calls = provider_calls(pipeline["image_service"].tag)
    checks = run_checks(pipeline, instance, yuki, [identity])
    assert checks.success, _failure_text(checks)
    assert check_evaluations(checks) == {("anchor_fullbody", "identity"): True}
    (evaluation,) = [
        e.event_specific_data
        for e in checks.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert evaluation.partition == yuki  # the check result carries its kit
    assert provider_calls(pipeline["image_service"].tag) == calls  # re-scored, not generated

    records = history(identity, limit=10)
    assert all(r.partition in (yuki, kenji) for r in records)
    assert [r.status for r in records if r.run_id == checks.run_id] == [
        AssetCheckExecutionRecordStatus.SUCCEEDED
    ]
    assert [r for r in history(identity, limit=10) if r.partition == kenji] == kenji_before
    assert all(r.status is AssetCheckExecutionRecordStatus.SUCCEEDED for r in kenji_before)


def test_scores_are_numbers_and_the_report_links_are_urls(pipeline, instance):
    kit_id = create_kit(pipeline)
    result = materialize_kit(pipeline, instance, kit_id, selection=[PORTRAIT, FULLBODY, REPORT])
    assert result.success, _failure_text(result)
    by_key = {
        e.event_specific_data.materialization.asset_key: e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
    }
    body = by_key[FULLBODY].metadata
    assert isinstance(body["identity"], dg.FloatMetadataValue)
    assert 0.0 < body["identity"].value <= 1.0
    assert isinstance(body["identity_threshold"], dg.FloatMetadataValue)
    assert isinstance(body["copy_distance"], dg.IntMetadataValue)
    report = by_key[REPORT].metadata
    assert report["studio_page"] == dg.MetadataValue.url(
        f"http://127.0.0.1:8000/studio/kits/{kit_id}"
    )
    assert report["report_html"].value.endswith(f"/reports/{kit_id}/report.html")
    assert report["contact_sheet"].value.endswith(f"/reports/{kit_id}/contact_sheet.png")
    assert report["kit_status"].value == "draft" and report["kit_name"].value == "Yuki Default"


def _approve(pipeline, instance, key: str) -> dg.ExecuteInProcessResult:
    return approve_kit_job.execute_in_process(
        run_config={"ops": {"approve_kit": {"config": {"kit_id": key}}}},
        resources={"catalog": pipeline["catalog"]},
        instance=instance,
        raise_on_error=False,
    )


def test_approve_kit_job_takes_a_name_and_explains_refusals(pipeline, instance):
    kit_id = create_kit(pipeline, name="Mika Default", character="Mika")
    unknown = _approve(pipeline, instance, "mika")
    assert not unknown.success
    text = _failure_text(unknown)
    assert "kit_id 'mika' is not a kit id" in text and kit_id in text
    assert "Traceback" not in text and "badly formed" not in text

    not_ready = _approve(pipeline, instance, "mika-default")  # resolved; no anchors yet
    assert not not_ready.success
    assert "('Mika Default') cannot be approved: missing" in _failure_text(not_ready)
    tags = instance.get_run_by_id(not_ready.run_id).tags
    assert tags[KIT_NAME_TAG] == "Mika Default"
    with pipeline["catalog"].session() as session:
        assert repo.get_kit(session, uuid.UUID(kit_id)).status == "draft"
