"""New takes through the request table and the kit sensor (as the studio, API and CLI ask),
and reports that follow every catalog change (report_refresh_sensor)."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from avatar_pipeline.assets.partitions import KIT_NAME_TAG, KITS_PARTITION_NAME
from avatar_pipeline.assets.reports import fleet_consistency
from avatar_pipeline.catalog import candidates as cands
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import ConstraintViolationError
from avatar_pipeline.catalog.models import KitGenerationRequest
from avatar_pipeline.cli import main
from avatar_pipeline.generation import review
from avatar_pipeline.sensors import kit_sensor, report_refresh_sensor
from avatar_pipeline_tests.kit_runs import KIT_ASSETS, materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import create_kit, provider_calls

FULLBODY = "anchor_fullbody"
ANCHOR_KEYS = [dg.AssetKey(["anchor_portrait"]), dg.AssetKey(["anchor_fullbody"])]
REPORT = dg.AssetKey(["consistency_report"])


def _tick(sensor, instance, pipeline, cursor: str | None = None):
    with dg.build_sensor_context(
        instance=instance, resources={"catalog": pipeline["catalog"]}, cursor=cursor
    ) as context:
        return sensor(context)


def _run(pipeline, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    config = request.run_config["ops"]["kit_images"]["config"]
    return materialize_kit(
        pipeline,
        instance,
        request.partition_key,
        selection=list(request.asset_selection),
        config=config,
        tags=dict(request.tags),
    )


def _report(pipeline, instance, kit_id: str) -> dg.ExecuteInProcessResult:
    """What kit_report_job runs: the kit's report alone."""
    return dg.materialize(
        KIT_ASSETS, selection=[REPORT], partition_key=kit_id, resources=pipeline, instance=instance
    )


def _kit_with_anchors(pipeline, instance) -> str:
    kit_id = create_kit(pipeline)
    assert materialize_kit(pipeline, instance, kit_id, selection=[*ANCHOR_KEYS, REPORT]).success
    with pipeline["catalog"].session() as session:
        slots = cands.candidates_by_slot(session, uuid.UUID(kit_id))
        for slot in ("anchor_portrait", FULLBODY):
            if slots[slot].canonical is None:  # the gate held it back: a person chooses it
                review.accept_candidate(session, kit_id, slots[slot].pending[0].id)
    return kit_id


def _canonical(pipeline, kit_id: str, slot: str) -> uuid.UUID:
    with pipeline["catalog"].session() as session:
        return repo.canonical_assets(session, uuid.UUID(kit_id))[slot].id


def test_new_take_request_runs_once_waits_for_a_person_and_is_not_reverted(pipeline, instance):
    kit_id = _kit_with_anchors(pipeline, instance)
    tag = pipeline["image_service"].tag
    original = _canonical(pipeline, kit_id, FULLBODY)
    with pipeline["catalog"].session() as session:
        request_id = repo.request_generation(
            session, kit_id=uuid.UUID(kit_id), slots=[FULLBODY], new_take=True
        ).id
    (run,) = _tick(kit_sensor, instance, pipeline).run_requests
    assert run.tags["avatar/trigger"] == "new-take" and run.tags[KIT_NAME_TAG] == "Yuki Default"
    config = run.run_config["ops"]["kit_images"]["config"]
    assert config == {"trigger": "new-take", "new_take": True, "take_token": str(request_id)}

    calls = provider_calls(tag)
    assert _run(pipeline, instance, run).success
    assert provider_calls(tag) == calls + 1
    assert _canonical(pipeline, kit_id, FULLBODY) == original  # no replacement without a choice
    with pipeline["catalog"].session() as session:
        (take,) = cands.candidates_by_slot(session, uuid.UUID(kit_id))[FULLBODY].pending
        assert cands.take_of(take) == 1

    # Dagster re-executes the same request: no second payment, no second take
    assert _run(pipeline, instance, run).success
    assert provider_calls(tag) == calls + 1
    with pipeline["catalog"].session() as session:
        pending = cands.candidates_by_slot(session, uuid.UUID(kit_id))[FULLBODY].pending
        assert [a.id for a in pending] == [take.id]
        review.accept_candidate(session, kit_id, take.id)

    # a later plain API/studio request for the slot: the cached image, and the choice stands
    with pipeline["catalog"].session() as session:
        repo.request_generation(session, kit_id=uuid.UUID(kit_id), slots=[FULLBODY])
    (plain,) = _tick(kit_sensor, instance, pipeline).run_requests
    assert plain.tags["avatar/trigger"] == "generation-request"
    assert _run(pipeline, instance, plain).success
    assert provider_calls(tag) == calls + 1
    assert _canonical(pipeline, kit_id, FULLBODY) == take.id


def test_a_new_take_request_names_exactly_one_known_slot(pipeline):
    kit_id = create_kit(pipeline)
    with pipeline["catalog"].session() as session:
        for slots in (None, ["anchor_portrait", FULLBODY], ["expression:giggling"]):
            with pytest.raises(ConstraintViolationError, match="slot"):
                repo.request_generation(
                    session, kit_id=uuid.UUID(kit_id), slots=slots, new_take=True
                )
        assert session.query(KitGenerationRequest).count() == 0


def test_a_request_for_an_unknown_slot_fails_alone_and_the_sensor_goes_on(pipeline, instance):
    kit_id = create_kit(pipeline)
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, [kit_id])
    with pipeline["catalog"].session() as session:
        bad = repo.request_generation(session, kit_id=uuid.UUID(kit_id), slots=["pose:flying"]).id
        good = repo.request_generation(session, kit_id=uuid.UUID(kit_id), slots=[FULLBODY]).id
    result = _tick(kit_sensor, instance, pipeline)
    assert [r.run_key for r in result.run_requests] == [f"request:{good}"]
    with pipeline["catalog"].session() as session:
        failed = session.get(KitGenerationRequest, bad)
        assert failed.status == "failed" and "unknown slot 'pose:flying'" in failed.message


def test_cli_requests_a_new_take_by_kit_name(pipeline, monkeypatch, capsys, tmp_path):
    kit_id = create_kit(pipeline, name="Mika Default", character="Mika")
    monkeypatch.setenv("AVATAR_DATABASE_URL", pipeline["catalog"].database_url)
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    argv = ["kits", "request", "mika-default", "--slot", "expression:shy", "--new-take"]
    assert main(argv) == 0
    assert (
        "a new take of expression:shy requested for kit 'Mika Default'" in capsys.readouterr().out
    )
    with pipeline["catalog"].session() as session:
        (request,) = repo.pending_generation_requests(session)
        assert (str(request.avatar_kit_id), request.slots, request.new_take) == (
            kit_id,
            ["expression:shy"],
            True,
        )
    assert main(["kits", "request", "nobody", "--slot", "expression:shy", "--new-take"]) == 1
    assert "'nobody' is not a kit id" in capsys.readouterr().err


def test_reports_follow_choices_and_approvals_made_outside_dagster(pipeline, instance):
    kit_id = _kit_with_anchors(pipeline, instance)
    first = _tick(report_refresh_sensor, instance, pipeline)
    jobs = {(r.job_name, r.partition_key) for r in first.run_requests}
    # the kit's report may be stale only if a person had to choose an anchor above
    assert ("fleet_report_job", None) in jobs
    assert jobs <= {("fleet_report_job", None), ("kit_report_job", kit_id)}
    for request in first.run_requests:
        if request.job_name == "kit_report_job":
            assert _report(pipeline, instance, kit_id).success
    assert dg.materialize(
        [*KIT_ASSETS, fleet_consistency],
        selection=[fleet_consistency],
        resources=pipeline,
        instance=instance,
    ).success
    quiet = _tick(report_refresh_sensor, instance, pipeline)
    assert not quiet.run_requests and quiet.skip_reason is not None

    # a person approves the kit in the studio: its report and the fleet index are stale
    with pipeline["catalog"].session() as session:
        repo.get_kit(session, uuid.UUID(kit_id)).status = "active"  # approval's effect
    stale = _tick(report_refresh_sensor, instance, pipeline, cursor=quiet.cursor)
    assert {(r.job_name, r.partition_key) for r in stale.run_requests} == {
        ("kit_report_job", kit_id),
        ("fleet_report_job", None),
    }
    kit_request = next(r for r in stale.run_requests if r.job_name == "kit_report_job")
    assert kit_request.tags[KIT_NAME_TAG] == "Yuki Default"
    refreshed = _report(pipeline, instance, kit_id)
    (event,) = refreshed.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata["kit_status"].value == "active"
    after = _tick(report_refresh_sensor, instance, pipeline, cursor=stale.cursor)
    assert {r.job_name for r in after.run_requests} <= {"fleet_report_job"}
