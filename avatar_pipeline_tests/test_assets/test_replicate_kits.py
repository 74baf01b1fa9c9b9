"""Kits through the Replicate provider against the fake Replicate server (which answers
"version": "hidden" for official models, like Replicate): pay once, faults, upgrades."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import avatar_pipeline_tests.fakes.replicate_server as fake
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.generation.outcomes import SlotStatus
from avatar_pipeline.generation.slots import ALL_SLOTS
from avatar_pipeline.generation.upgrade import MODEL_UPGRADE, settle_canary
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer, Fault
from avatar_pipeline_tests.pipeline_fixtures import create_kit
from avatar_pipeline_tests.replicate_kits import (
    FAKE_MEGAPIXELS,
    kit_generator,
    kit_rows,
    replicate_resources,
)

FLUX11 = "black-forest-labs/flux-1.1-pro"
KONTEXT = "black-forest-labs/flux-kontext-pro"
ANCHORS = ["anchor_portrait", "anchor_fullbody"]
FAULT_SLOTS = [*ANCHORS, "expression:happy", "expression:sad", "pose:sitting"]


@pytest.fixture
def server() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(processing_s=0.02, megapixels=FAKE_MEGAPIXELS) as running:
        yield running


@pytest.fixture
def resources(tmp_path: Path, server: FakeReplicateServer) -> dict[str, Any]:
    return replicate_resources(tmp_path, server.base_url, server.token)


def _versions(rows: list[Any]) -> set[str]:
    return {str((r.generation_metadata or {}).get("model_version")) for r in rows}


def test_same_kit_twice_pays_once_and_records_real_versions(
    resources: dict[str, Any], server: FakeReplicateServer
) -> None:
    kit = create_kit(resources)
    first = asyncio.run(kit_generator(resources).run(kit))
    assert all(o.status is SlotStatus.GENERATED for o in first), [o.reason for o in first]
    paid = server.create_count()
    rows = kit_rows(resources, kit)
    assert paid == len(ALL_SLOTS) == len(rows)
    # every prediction said "hidden"; what was recorded is the models endpoint's real id
    assert {server.prediction_json(p, "")["version"] for p in server.predictions} == {"hidden"}
    assert _versions(rows) == {server.latest_versions[m] for m in (FLUX11, KONTEXT)} | {
        server.latest_versions["black-forest-labs/flux-2-pro"]
    }
    assert "hidden" not in json.dumps([r.generation_metadata for r in rows], default=str)

    # a second materialisation (a fresh process: new resources, same cache and catalog)
    again = replicate_resources(
        Path(resources["image_service"].cache_dir).parent, server.base_url, server.token
    )
    second = asyncio.run(kit_generator(again).run(kit))
    assert server.create_count() == paid  # 0 prediction creates
    assert len(kit_rows(again, kit)) == len(rows)  # 0 new rows
    assert all(o.status is SlotStatus.REUSED for o in second)


def test_thirty_percent_faults_over_eight_kits_then_rerun_pays_only_missing_slots(
    tmp_path: Path, server: FakeReplicateServer
) -> None:
    faults = (
        Fault(fake.RATE_LIMIT, retry_after="0.05"),
        Fault(fake.SERVER_ERROR),
        Fault(fake.UNAVAILABLE),
        Fault(fake.FAILED, message="CUDA out of memory"),
        Fault(fake.KEYERROR_SAMPLE),
        Fault(fake.NO_OUTPUT),
        Fault(fake.SLOW, delay_s=0.2),
        Fault(fake.SAFETY),
    )
    server.random_faults(rate=0.3, seed=1306, faults=faults)
    # at 30 % faults a bound of 5 predictions per slot leaves ~2e-5 per slot to chance
    resources = replicate_resources(
        tmp_path, server.base_url, server.token, max_prediction_attempts=5
    )
    kits = [create_kit(resources, name=f"Fault kit {i}") for i in range(8)]

    async def all_kits() -> list[list[Any]]:
        # five slots of each kit (every dependency kind: anchor -> fullbody -> pose, and
        # expressions) keep the test bounded; kits one after the other on one SQLite file
        return [await kit_generator(resources).run(k, FAULT_SLOTS) for k in kits]

    results = asyncio.run(all_kits())
    stored: dict[str, set[str]] = {}
    for kit, outcomes in zip(kits, results, strict=True):
        for o in outcomes:
            if o.status is SlotStatus.FAILED:
                # only safety refusals survive the retries; nothing else fails a slot
                assert o.failure_kind == "safety_refusal", (o.slot.name, o.reason)
            elif o.status is SlotStatus.SKIPPED:
                # waits for an anchor that was refused, or that failed the consistency gate
                assert o.failure_kind == "blocked", o
                assert "safety filter" in (o.reason or "") or "failed the gate" in (o.reason or "")
        stored[kit] = {o.slot.name for o in outcomes if o.has_image}
        rows = kit_rows(resources, kit)
        slots = [repo.slot_of(r) for r in rows]
        assert sorted(slots) == sorted(stored[kit])  # one row per stored slot, none half-made
        assert "hidden" not in _versions(rows)
    assert any(r.fault == fake.SAFETY for r in server.creates())  # faults did land
    assert any(r.fault == fake.KEYERROR_SAMPLE for r in server.creates())
    missing = sum(len(FAULT_SLOTS) - len(v) for v in stored.values())
    assert missing >= 1

    # faults gone: the re-run pays only for slots that have no image; every stored slot reused
    server.random_faults(rate=0.0, seed=0, faults=faults)
    before = server.create_count()
    rows_before = sum(len(kit_rows(resources, k)) for k in kits)
    reruns = asyncio.run(all_kits())
    paid = server.create_count() - before
    rows_after = sum(len(kit_rows(resources, k)) for k in kits)
    assert 1 <= paid <= missing and paid == rows_after - rows_before
    for kit, outcomes in zip(kits, reruns, strict=True):
        for o in outcomes:
            if o.slot.name in stored[kit]:
                assert o.status is SlotStatus.REUSED, o
            else:  # complete now, unless its anchor failed the gate (a person's call)
                assert o.has_image or "failed the gate" in (o.reason or ""), o


def _canary(resources: dict[str, Any], kit: str, slots: list[str], reports: Path):
    outcomes = asyncio.run(kit_generator(resources, trigger=MODEL_UPGRADE).run(kit, slots))
    return outcomes, settle_canary(
        resources["catalog"].session_factory(),
        resources["object_store"].get_store(),
        kit,
        outcomes,
        reports_dir=reports,
    )


def test_model_upgrade_canary_promotes_a_passing_set_kit_atomically(
    resources: dict[str, Any], server: FakeReplicateServer, tmp_path: Path
) -> None:
    kit = create_kit(resources)
    asyncio.run(kit_generator(resources).run(kit, ANCHORS))
    old = {repo.slot_of(r): r for r in kit_rows(resources, kit) if r.is_canonical}
    assert set(old) == set(ANCHORS)
    v2 = {m: server.bump_version(m) for m in (FLUX11, KONTEXT)}

    outcomes, verdict = _canary(resources, kit, ANCHORS, tmp_path / "reports")
    # new candidates were stored (not dropped by a fingerprint collision) ...
    assert all(o.status is SlotStatus.GENERATED for o in outcomes)
    assert {o.generation["model_version"] for o in outcomes} == set(v2.values())
    # ... the fullbody was edited from the NEW portrait row
    portrait, fullbody = outcomes
    assert fullbody.generation["reference_asset_ids"] == [portrait.asset_id]
    assert verdict is not None and verdict.promoted, verdict.reason
    now = {repo.slot_of(r): r for r in kit_rows(resources, kit) if r.is_canonical}
    assert {str(r.id) for r in now.values()} == {o.asset_id for o in outcomes}
    assert _versions(list(now.values())) == set(v2.values())  # one version per model
    assert all(r.review_state is None for r in now.values())
    report = json.loads(Path(verdict.report_json).read_text())
    assert report["promoted"] and {s["slot"] for s in report["slots"]} == set(ANCHORS)
    html = Path(verdict.report_html).read_text()
    assert "old (canonical before)" in html and html.count("<img") == 4  # side by side
    # the kit report links it (consistency/report.py adds this section)
    from avatar_pipeline.generation.upgrade_report import upgrade_links_html

    links = upgrade_links_html(Path(verdict.report_html).parent)
    assert Path(verdict.report_html).name in links and "promoted" in links


def test_model_upgrade_canary_keeps_the_old_set_when_the_new_one_fails(
    resources: dict[str, Any], server: FakeReplicateServer, tmp_path: Path
) -> None:
    kit = create_kit(resources)
    asyncio.run(kit_generator(resources).run(kit, ANCHORS))
    old_ids = {r.id for r in kit_rows(resources, kit) if r.is_canonical}
    server.bump_version(FLUX11)  # the portrait's model: a good upgrade ...
    server.bump_version(KONTEXT, unfaithful=True)  # ... the edit model regressed

    outcomes, verdict = _canary(resources, kit, ANCHORS, tmp_path / "reports")
    assert verdict is not None and not verdict.promoted
    assert "old set kept" in verdict.reason and "anchor_fullbody" in verdict.reason
    rows = kit_rows(resources, kit)
    # kit-atomic: the passing new portrait was NOT promoted either; nothing is mixed
    assert {r.id for r in rows if r.is_canonical} == old_ids
    new_rows = [r for r in rows if str(r.id) in {o.asset_id for o in outcomes}]
    assert len(new_rows) == 2 and all(r.review_state == "pending" for r in new_rows)
    assert all(r.generation_metadata["candidate_set"] == verdict.candidate_set for r in new_rows)
    assert Path(verdict.report_html).exists()
    assert "old set kept" in Path(verdict.report_html).read_text()


def test_upgrade_canary_of_an_active_kit_waits_for_a_person(
    resources: dict[str, Any], server: FakeReplicateServer, tmp_path: Path
) -> None:
    kit = create_kit(resources)
    asyncio.run(kit_generator(resources).run(kit, ANCHORS))
    with resources["catalog"].session() as session:
        repo.get_kit(session, uuid.UUID(kit)).status = "active"
    old_ids = {r.id for r in kit_rows(resources, kit) if r.is_canonical}
    server.bump_version(FLUX11)
    _, verdict = _canary(resources, kit, ANCHORS, tmp_path / "reports")
    assert verdict is not None and not verdict.promoted and "waits for a person" in verdict.reason
    assert {r.id for r in kit_rows(resources, kit) if r.is_canonical} == old_ids
