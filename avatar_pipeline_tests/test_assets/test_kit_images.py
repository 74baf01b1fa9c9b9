"""A kit materialised end to end on the offline provider: images, rows, lineage, gate, report."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
from PIL import Image

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline_tests.kit_runs import (
    approve,
    check_evaluations,
    check_verdicts,
    materialize_kit,
    materialized_keys,
    run_checks,
)
from avatar_pipeline_tests.pipeline_fixtures import (
    create_kit,
    provider_calls,
    strict_gate,
)


def _assets(resources, kit_id):
    with resources["catalog"].session() as session:
        return [
            (
                a.id,
                a.asset_type,
                a.expression,
                a.pose,
                a.storage_path,
                a.is_canonical,
                a.derived_from_id,
                a.source_type,
                dict(a.generation_metadata or {}),
            )
            for a in repo.list_assets(session, uuid.UUID(kit_id))
        ]


def test_kit_materialises_end_to_end(pipeline, instance, tmp_path: Path):
    kit_id = create_kit(pipeline)
    result = materialize_kit(pipeline, instance, kit_id)
    assert result.success

    # every slot is a materialised asset; every check passed, except adherence, which the
    # perceptual embedder cannot measure: a non-passing WARN "not measured", never a pass
    expected_keys = {"/".join(s.asset_key_path) for s in ALL_SLOTS} | {"consistency_report"}
    assert materialized_keys(result) == expected_keys
    verdicts = check_verdicts(result)
    assert len(verdicts) == 1 + 3 + 8 * 4 + 4 * 4
    for (key, name), verdict in verdicts.items():
        assert verdict == ("unmeasured" if name == "adherence" else "pass"), (key, name)

    rows = _assets(pipeline, kit_id)
    assert len(rows) == 14
    by_slot = {}
    for row in rows:
        asset_id, asset_type, expression, pose, path, canonical, _, source, meta = row
        slot = meta["slot"]
        by_slot[slot] = row
        # anchors pass every check; expressions and poses wait for a person
        assert canonical == slot.startswith("anchor_"), slot
        assert source == "ai_generated"
        # the spec's storage layout, and the object really is there and decodes
        kind = {"anchor_portrait": "anchors/portrait", "anchor_fullbody": "anchors/fullbody"}.get(
            asset_type,
            f"expressions/{expression}" if asset_type == "expression" else f"poses/{pose}",
        )
        assert path == f"{kit_id}/{kind}_{asset_id}.png"
        file = tmp_path / "objects" / "avatars" / path
        with Image.open(file) as img:
            assert img.size == (384, 384)
        # provenance
        for field in (
            "provider",
            "model",
            "model_version",
            "prompt",
            "seed",
            "latency_ms",
            "cost_usd",
            "fingerprint",
            "consistency",
        ):
            assert field in meta, (slot, field)
        assert "api_token" not in json.dumps(meta)

    portrait_id = by_slot["anchor_portrait"][0]
    fullbody_id = by_slot["anchor_fullbody"][0]
    assert by_slot["anchor_portrait"][6] is None
    assert by_slot["anchor_fullbody"][6] == portrait_id
    assert by_slot["expression:shy"][6] == portrait_id
    assert by_slot["pose:sitting"][6] == fullbody_id
    assert by_slot["pose:sitting"][8]["reference_asset_ids"] == [str(portrait_id), str(fullbody_id)]
    assert set(by_slot["expression:happy"][8]["consistency"]["checks"]) >= {
        "identity",
        "not_a_copy",
    }

    with pipeline["catalog"].session() as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        assert kit.primary_anchor_id == portrait_id
        assert kit.secondary_anchor_id == fullbody_id
        assert kit.status == "draft"  # approval is an explicit step
        contract = kit.palette_contract
        assert contract and contract["anchor_asset_id"] == str(portrait_id)
        assets = repo.list_assets(session, kit.id)
        pending = {repo.slot_of(a) for a in assets if a.review_state == "pending"}
    assert pending == {s.name for s in ALL_SLOTS if not s.is_anchor}

    # a person approves the kit: every pending candidate becomes canonical with it
    approve(pipeline, kit_id)
    with pipeline["catalog"].session() as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        assert kit.status == "active"
        canonical = repo.canonical_assets(session, kit.id)
        assert set(canonical) == {s.name for s in ALL_SLOTS}
        assert {a.review_state for a in canonical.values()} == {None, "accepted"}

    report = tmp_path / "reports" / kit_id / "report.html"
    assert report.exists()
    html = report.read_text()
    assert html.count("data:image/") >= 14

    # materialisation metadata a person reads in the UI
    events = result.get_asset_materialization_events()
    materializations = [e.event_specific_data.materialization for e in events]
    mats = {m.asset_key.to_user_string(): m.metadata for m in materializations}
    happy = mats["expressions/happy"]
    assert happy["preview"].value.startswith("![expression:happy](data:image/jpeg;base64,")
    for key in (
        "storage_key",
        "prompt",
        "model",
        "model_version",
        "seed",
        "latency_ms",
        "cost_usd",
        "asset_id",
    ):
        assert key in happy, key


def test_rematerialising_unchanged_kit_calls_no_provider_and_adds_no_rows(pipeline, instance):
    kit_id = create_kit(pipeline)
    assert materialize_kit(pipeline, instance, kit_id).success
    tag = pipeline["image_service"].tag
    calls, rows = provider_calls(tag), _assets(pipeline, kit_id)
    assert calls == 14

    again = materialize_kit(pipeline, instance, kit_id)
    assert again.success
    assert provider_calls(tag) == calls
    assert _assets(pipeline, kit_id) == rows


def test_one_expression_regenerates_alone(pipeline, instance):
    kit_id = create_kit(pipeline)
    assert materialize_kit(pipeline, instance, kit_id).success
    approve(pipeline, kit_id)
    tag = pipeline["image_service"].tag
    before = provider_calls(tag)
    shy = dg.AssetKey(["expressions", "shy"])

    result = materialize_kit(pipeline, instance, kit_id, selection=[shy], config={"reroll": 1})
    assert result.success
    assert materialized_keys(result) == {"expressions/shy"}
    assert provider_calls(tag) == before + 1  # "shy" does not pay for "happy"

    rows = _assets(pipeline, kit_id)
    shy_rows = [r for r in rows if r[2] == "shy"]
    assert len(shy_rows) == 2 and sum(r[5] for r in shy_rows) == 1  # one canonical per slot
    assert len(rows) == 15


def test_failing_gate_keeps_previous_canonical(pipeline, instance, tmp_path):
    kit_id = create_kit(pipeline)
    assert materialize_kit(pipeline, instance, kit_id).success
    approve(pipeline, kit_id)
    with pipeline["catalog"].session() as session:
        canonical_before = {
            slot: a.id for slot, a in repo.canonical_assets(session, uuid.UUID(kit_id)).items()
        }

    strict = dict(pipeline)
    strict["consistency"] = strict_gate(tmp_path)
    happy = dg.AssetKey(["expressions", "happy"])
    result = materialize_kit(strict, instance, kit_id, selection=[happy], config={"reroll": 7})
    assert not result.success  # the blocking check stops the run
    assert check_evaluations(result)[("expressions/happy", "identity")] is False

    with pipeline["catalog"].session() as session:
        canonical_after = {
            slot: a.id for slot, a in repo.canonical_assets(session, uuid.UUID(kit_id)).items()
        }
        candidates = [
            a
            for a in repo.list_assets(session, uuid.UUID(kit_id))
            if a.expression == "happy" and not a.is_canonical
        ]
    assert canonical_after == canonical_before
    assert len(candidates) == 1  # the rejected candidate is kept for review, not canonical
    assert candidates[0].generation_metadata["consistency"]["passed"] is False


def test_uploaded_portrait_is_never_overwritten(pipeline, instance, tmp_path):
    import asyncio

    from avatar_pipeline.imaging.providers.offline import OfflineProvider
    from avatar_pipeline.imaging.types import GenerateRequest
    from avatar_pipeline.storage.keys import anchor_path

    kit_id = create_kit(pipeline)
    store = pipeline["object_store"].get_store()
    drawn = asyncio.run(
        OfflineProvider().generate(
            GenerateRequest(
                "portrait, long red hair, green eyes, blue dress", width=384, height=384, seed=5
            )
        )
    )
    upload_id = uuid.uuid4()
    path = anchor_path(kit_id, "anchor_portrait", str(upload_id))
    store.put("avatars", path, drawn.images[0])
    with pipeline["catalog"].session() as session:
        repo.register_asset(
            session,
            kit_id=uuid.UUID(kit_id),
            asset_id=upload_id,
            asset_type="anchor_portrait",
            storage_path=path,
            source_type="manual_upload",
            width=384,
            height=384,
        )

    tag = pipeline["image_service"].tag
    result = materialize_kit(
        pipeline,
        instance,
        kit_id,
        selection=[dg.AssetKey(["anchor_portrait"]), dg.AssetKey(["anchor_fullbody"])],
    )
    assert result.success
    assert provider_calls(tag) == 1  # the full body only; the portrait was not generated
    with pipeline["catalog"].session() as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        assert kit.primary_anchor_id == upload_id
        portraits = repo.list_assets(session, kit.id, asset_type="anchor_portrait")
        assert [p.id for p in portraits] == [upload_id]


def test_checks_alone_rescore_the_stored_image_without_generating(pipeline, instance, tmp_path):
    kit_id = create_kit(pipeline)
    assert materialize_kit(pipeline, instance, kit_id).success
    tag = pipeline["image_service"].tag
    calls, rows = provider_calls(tag), _assets(pipeline, kit_id)
    happy = dg.AssetKey(["expressions", "happy"])
    checks = [dg.AssetCheckKey(happy, name) for name in ("identity", "adherence", "not_a_copy")]

    passed = run_checks(pipeline, instance, kit_id, checks)
    assert passed.success
    assert check_verdicts(passed) == {
        ("expressions/happy", "identity"): "pass",
        ("expressions/happy", "adherence"): "unmeasured",  # no text tower: never a pass
        ("expressions/happy", "not_a_copy"): "pass",
    }
    assert materialized_keys(passed) == set()

    # a stricter gate re-evaluated on the same stored image fails, and changes nothing
    strict = {
        **pipeline,
        "consistency": strict_gate(tmp_path),
    }
    failed = run_checks(strict, instance, kit_id, checks)
    assert check_evaluations(failed)[("expressions/happy", "identity")] is False
    assert provider_calls(tag) == calls and _assets(pipeline, kit_id) == rows
