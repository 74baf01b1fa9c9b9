"""Level 1: the code location loads, with every asset, check, job, sensor and schedule."""

import dagster as dg

from avatar_pipeline.definitions import defs
from avatar_pipeline.generation.slots import ALL_SLOTS


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"/".join(s.asset_key_path) for s in ALL_SLOTS} <= keys
    assert {"consistency_report", "fleet_consistency", "provider/edit_model"} <= keys
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "kit_job",
        "kit_report_job",
        "approve_kit_job",
        "fleet_report_job",
    }
    assert {s.name for s in defs.sensors} == {
        "kit_sensor",
        "prompt_change_sensor",
        "report_after_failed_gate",
        "generation_request_done",
        "generation_request_failed",
        "generation_request_started",
        "report_refresh_sensor",
    }
    assert {s.name for s in defs.schedules} == {
        "model_upgrade_schedule",
        "observe_provider_models_schedule",
        "scene_drift_schedule",
    }
    assert "scene_drift" in keys
    assert "scene_drift_job" in {j.name for j in defs.resolve_all_job_defs()}


def test_lineage_anchors_before_expressions_and_poses():
    graph = defs.resolve_asset_graph()
    portrait = dg.AssetKey(["anchor_portrait"])
    fullbody = dg.AssetKey(["anchor_fullbody"])
    assert portrait in graph.get(dg.AssetKey(["expressions", "shy"])).parent_keys
    assert {portrait, fullbody} <= graph.get(dg.AssetKey(["poses", "sitting"])).parent_keys
    assert dg.AssetKey(["provider", "generate_model"]) in graph.get(portrait).parent_keys


def test_every_slot_has_blocking_checks():
    checks = defs.resolve_asset_graph().asset_check_keys
    shy = dg.AssetKey(["expressions", "shy"])
    assert {c.name for c in checks if c.asset_key == shy} == {
        "identity",
        "adherence",
        "not_a_copy",
        "palette",
    }
    spec = next(
        s
        for s in defs.resolve_asset_graph().get(shy).assets_def.check_specs
        if s.asset_key == shy and s.name == "identity"
    )
    assert spec.blocking


def test_observing_provider_models_records_each_model_version():
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("observe_provider_models_job").execute_in_process(
            instance=instance
        )
        assert result.success
        observed = {
            e.event_specific_data.asset_observation.asset_key.to_user_string(): (
                e.event_specific_data.asset_observation.tags["dagster/data_version"]
            )
            for e in result.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        }
    assert observed == {
        "provider/generate_model": "offline/character-renderer@offline-1",
        "provider/edit_model": "offline/character-renderer@offline-1",
        "provider/multi_reference_model": "offline/character-renderer@offline-1",
    }
