"""Best-of-N, the per-kit cost budget, provider failures, and a direct asset call."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg

from avatar_pipeline.assets.reports import consistency_report
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.resources import ConsistencyResource
from avatar_pipeline_tests.kit_runs import materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import (
    FlakyImageServiceResource,
    create_kit,
    provider_calls,
)


def _objects(root: Path, kit_id: str) -> set[str]:
    base = root / "objects" / "avatars" / kit_id
    return (
        {str(p.relative_to(base.parent)) for p in base.rglob("*.png")} if base.exists() else set()
    )


def test_best_of_n_keeps_the_best_passing_candidate_and_records_the_others(pipeline, instance):
    kit_id = create_kit(pipeline)
    tag = pipeline["image_service"].tag
    result = materialize_kit(pipeline, instance, kit_id, config={"candidates_per_slot": 3})
    assert result.success
    assert provider_calls(tag) == 14 * 3
    with pipeline["catalog"].session() as session:
        assets = repo.list_assets(session, uuid.UUID(kit_id))
    assert len(assets) == 14  # only the chosen candidate of each slot is stored
    for asset in assets:
        meta = asset.generation_metadata
        alternatives = meta["alternatives"]
        assert len(alternatives) == 2, meta["slot"]
        if meta["slot"] != "anchor_portrait":
            chosen = meta["consistency"]["identity"]
            passing = [a["scores"]["identity"] for a in alternatives if a["scores"]["passed"]]
            assert all(chosen >= other for other in passing), meta["slot"]
            assert {a["seed"] for a in alternatives} | {meta["seed"]} == {
                meta["seed"],
                *(a["seed"] for a in alternatives),
            } and len({a["seed"] for a in alternatives} | {meta["seed"]}) == 3


def test_cost_budget_stops_generation_with_a_clear_message(pipeline, instance, tmp_path):
    kit_id = create_kit(pipeline)
    pricey = {
        **pipeline,
        "image_service": FlakyImageServiceResource(
            cache_dir=str(tmp_path / "image_cache"), image_size=384, cost_per_image_usd=0.04
        ),
        "consistency": ConsistencyResource(
            embedder="perceptual",
            embedding_cache_dir=str(tmp_path / "embeddings"),
            reports_dir=str(tmp_path / "reports"),
            kit_cost_budget_usd=0.30,
        ),
    }
    result = materialize_kit(pricey, instance, kit_id)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    text = failure.description + str(failure.metadata["failed_slots"].value)
    assert "cost budget" in text and "AVATAR_KIT_COST_BUDGET_USD" in text
    with pipeline["catalog"].session() as session:
        assets = repo.list_assets(session, uuid.UUID(kit_id))
        spent = repo.kit_total_cost(session, uuid.UUID(kit_id))
    assert 0 < len(assets) <= 7
    assert spent <= 0.30 + 1e-9
    # every row has its object and every object has its row: no orphans
    assert _objects(tmp_path, kit_id) == {
        f"{kit_id}/{a.storage_path.split('/', 1)[1]}" for a in assets
    }


def test_provider_failure_writes_nothing_for_that_slot(pipeline, instance, tmp_path):
    kit_id = create_kit(pipeline)
    flaky = {
        **pipeline,
        "image_service": FlakyImageServiceResource(
            cache_dir=str(tmp_path / "image_cache"), image_size=384, fail_on="sad expression"
        ),
    }
    result = materialize_kit(flaky, instance, kit_id)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "expression:sad" in str(failure.metadata["failed_slots"].value)
    assert "model crashed" in str(failure.metadata["failed_slots"].value)
    with pipeline["catalog"].session() as session:
        canonical = repo.canonical_assets(session, uuid.UUID(kit_id))
        assets = repo.list_assets(session, uuid.UUID(kit_id))
    # anchors pass on their own; with the weight-free embedder adherence is not measured, so
    # the other slots wait for a person (pending) — every slot but the failed one was produced
    produced = set(canonical) | {repo.slot_of(a) for a in assets if a.review_state == "pending"}
    assert "expression:sad" not in produced and len(produced) == 13
    assert not any(a.expression == "sad" for a in assets)
    assert not any("/sad_" in p for p in _objects(tmp_path, kit_id))


def test_report_asset_called_directly(pipeline, instance, tmp_path):
    kit_id = create_kit(pipeline)
    assert materialize_kit(
        pipeline,
        instance,
        kit_id,
        selection=[dg.AssetKey(["anchor_portrait"]), dg.AssetKey(["expressions", "happy"])],
    ).success
    context = dg.build_asset_context(partition_key=kit_id)
    result = consistency_report(
        context,
        catalog=pipeline["catalog"],
        object_store=pipeline["object_store"],
        consistency=pipeline["consistency"],
    )
    # the portrait is canonical; the expression waits for a person (adherence not measured)
    assert result.metadata["canonical_slots"] == 1
    assert result.metadata["pending_candidates"] == 1
    summary = result.metadata["summary"].value
    assert "expression:happy" in summary and "anchor_portrait" in summary
    assert (tmp_path / "reports" / kit_id / "report.json").exists()
