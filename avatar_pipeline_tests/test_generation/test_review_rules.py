"""Takes, a person's choices and approved kits, against the real generator, catalog and store.

The offline provider is wrapped by a call counter (the process boundary we observe); the catalog
is SQLite, and PostgreSQL where several people decide at once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from avatar_pipeline.assets.kit_images import KitRunConfig, build_generator
from avatar_pipeline.catalog import candidates as cands
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import (
    InvalidReferenceError,
    InvalidTransitionError,
    NotFoundError,
)
from avatar_pipeline.catalog.reviews import list_decisions
from avatar_pipeline.generation import review
from avatar_pipeline.generation.outcomes import SlotStatus
from avatar_pipeline_tests.db_fixtures import catalog_url, migrated_catalog_url  # noqa: F401
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources, provider_calls

ANCHORS = ["anchor_portrait", "anchor_fullbody"]
FULLBODY = "anchor_fullbody"


@pytest.fixture
def res(tmp_path: Path) -> dict[str, Any]:
    return make_resources(tmp_path)


def generate(res: dict[str, Any], kit_id: str, slots: list[str], **config: Any):
    generator = build_generator(
        catalog=res["catalog"],
        object_store=res["object_store"],
        image_service=res["image_service"],
        consistency=res["consistency"],
        config=KitRunConfig(**config),
    )
    return {o.slot.name: o for o in asyncio.run(generator.run(kit_id, slots))}


def session(res: dict[str, Any]):
    return session_scope(res["catalog"].session_factory(), write=True)


def canonical_ids(res: dict[str, Any], kit_id: str) -> dict[str, uuid.UUID]:
    with session(res) as s:
        return {slot: a.id for slot, a in repo.canonical_assets(s, uuid.UUID(kit_id)).items()}


def row_count(res: dict[str, Any], kit_id: str) -> int:
    with session(res) as s:
        return len(repo.list_assets(s, uuid.UUID(kit_id), include_inactive=True))


def kit_with_anchors(res: dict[str, Any], name: str = "Yuki Default") -> str:
    """A kit whose two anchors are canonical (a person chooses any the gate held back)."""
    kit_id = create_kit(res, name=name)
    generate(res, kit_id, ANCHORS)
    with session(res) as s:
        slots = cands.candidates_by_slot(s, uuid.UUID(kit_id))
        for slot in ANCHORS:
            if slots[slot].canonical is None:
                review.accept_candidate(s, kit_id, slots[slot].pending[0].id)
    assert set(canonical_ids(res, kit_id)) >= set(ANCHORS)
    return kit_id


def make_active(s, kit_id: str) -> None:
    """Set up an approved kit. (Approval's own rules — every required slot canonical — are the
    catalog's and tested there; these tests need only the anchors.)"""
    repo.get_kit(s, uuid.UUID(kit_id)).status = "active"
    s.flush()


def test_a_new_take_is_a_pending_candidate_and_is_paid_once(res):
    kit_id = kit_with_anchors(res)
    tag = res["image_service"].tag
    before, calls, rows = canonical_ids(res, kit_id), provider_calls(tag), row_count(res, kit_id)

    first = generate(res, kit_id, [FULLBODY], new_take=True, take_token="request-1")[FULLBODY]
    assert first.status is SlotStatus.GENERATED and not first.promoted
    assert provider_calls(tag) == calls + 1
    assert canonical_ids(res, kit_id) == before  # the canonical image stays
    with session(res) as s:
        take = repo.get_asset(s, uuid.UUID(first.asset_id))
        assert (take.review_state, take.is_canonical) == ("pending", False)
        assert take.generation_metadata["take"] == 1
        pending = cands.candidates_by_slot(s, uuid.UUID(kit_id))[FULLBODY].pending
        assert [a.id for a in pending] == [take.id]

    # the same request again (a retried run): same take, no second payment, no second row
    again = generate(res, kit_id, [FULLBODY], new_take=True, take_token="request-1")[FULLBODY]
    assert again.asset_id == first.asset_id and again.status is SlotStatus.REUSED
    assert provider_calls(tag) == calls + 1 and row_count(res, kit_id) == rows + 1

    # another request is another take, with another seed
    second = generate(res, kit_id, [FULLBODY], new_take=True, take_token="request-2")[FULLBODY]
    assert second.asset_id != first.asset_id
    assert second.generation["seed"] != first.generation["seed"]
    with session(res) as s:
        assert repo.get_asset(s, uuid.UUID(second.asset_id)).generation_metadata["take"] == 2
    assert provider_calls(tag) == calls + 2 and canonical_ids(res, kit_id) == before


def test_a_chosen_take_is_never_silently_reverted(res):
    kit_id = kit_with_anchors(res)
    tag = res["image_service"].tag
    original = canonical_ids(res, kit_id)[FULLBODY]
    take = generate(res, kit_id, [FULLBODY], new_take=True, take_token="r1")[FULLBODY]

    with session(res) as s:
        outcome = review.accept_candidate(s, kit_id, take.asset_id, note="better hands")
        assert outcome.replaced == [str(original)]
    with session(res) as s:
        kit = repo.get_kit(s, uuid.UUID(kit_id))
        assert str(kit.secondary_anchor_id) == take.asset_id
        assert repo.get_asset(s, uuid.UUID(take.asset_id)).review_state == "accepted"
        (decision,) = [d for d in list_decisions(s, kit_id) if d.note == "better hands"]
        assert (decision.decision, str(decision.asset_id)) == ("accepted", take.asset_id)

    # a later plain request ("regenerate", or a re-materialise): the cached original comes
    # back, unpaid, and does not replace the take a person chose
    calls = provider_calls(tag)
    plain = generate(res, kit_id, [FULLBODY], trigger="generation-request")[FULLBODY]
    assert plain.asset_id == str(original) and not plain.promoted
    assert provider_calls(tag) == calls
    assert canonical_ids(res, kit_id)[FULLBODY] == uuid.UUID(take.asset_id)

    # the person may go back to the original: that is their choice, recorded
    with session(res) as s:
        review.accept_candidate(s, kit_id, original)
    assert canonical_ids(res, kit_id)[FULLBODY] == original


def test_choosing_a_new_portrait_says_what_it_invalidates(res):
    kit_id = kit_with_anchors(res)
    take = generate(res, kit_id, ["anchor_portrait"], new_take=True, take_token="p1")
    with session(res) as s:
        outcome = review.accept_candidate(s, kit_id, take["anchor_portrait"].asset_id)
        assert outcome.invalidates == [FULLBODY]
        assert "anchor_fullbody" in outcome.message and "new take" in outcome.message
        kit = repo.get_kit(s, uuid.UUID(kit_id))
        assert str(kit.primary_anchor_id) == take["anchor_portrait"].asset_id


def test_an_approved_kit_keeps_its_images_until_a_person_approves_the_new_set(res):
    kit_id = kit_with_anchors(res)
    with session(res) as s:
        make_active(s, kit_id)
        repo.update_kit(
            s,
            uuid.UUID(kit_id),
            appearance_prompt="young woman, long blonde hair, blue eyes, red dress",
        )
    approved = canonical_ids(res, kit_id)

    out = generate(res, kit_id, ANCHORS, trigger="prompt-change")
    assert not any(o.promoted for o in out.values())
    assert canonical_ids(res, kit_id) == approved
    with session(res) as s:
        assert repo.get_kit(s, uuid.UUID(kit_id)).status == "active"
        sets = cands.pending_candidate_sets(s, uuid.UUID(kit_id))
        (set_id,) = sets
        assert set_id.startswith("prompt-change:")
        assert {repo.slot_of(a) for a in sets[set_id]} == set(ANCHORS)

    # the same change again (the sensor re-fires, or a plain re-run): still nothing promoted
    generate(res, kit_id, ANCHORS, trigger="prompt-change")
    assert canonical_ids(res, kit_id) == approved

    with session(res) as s:
        outcome = review.approve_candidate_set(s, kit_id, set_id)
        assert sorted(outcome.replaced) == sorted(str(i) for i in approved.values())
    now = canonical_ids(res, kit_id)
    assert {str(now[s]) for s in ANCHORS} == {str(a.id) for a in sets[set_id]}
    with session(res) as s:
        assert cands.pending_candidate_sets(s, uuid.UUID(kit_id)) == {}
        decided = {str(d.asset_id) for d in list_decisions(s, kit_id) if d.decision == "accepted"}
        assert decided >= {str(now[s]) for s in ANCHORS}


def test_a_rejected_set_leaves_the_approved_images(res):
    kit_id = kit_with_anchors(res)
    with session(res) as s:
        make_active(s, kit_id)
        repo.update_kit(s, uuid.UUID(kit_id), style_prompt="watercolour, loose brush strokes")
    approved = canonical_ids(res, kit_id)
    generate(res, kit_id, ANCHORS, trigger="prompt-change")
    with session(res) as s:
        (set_id,) = cands.pending_candidate_sets(s, uuid.UUID(kit_id))
        outcome = review.reject_candidate_set(s, kit_id, set_id, note="too pale")
        assert len(outcome.rejected) == 2
    assert canonical_ids(res, kit_id) == approved
    generate(res, kit_id, ANCHORS, trigger="prompt-change")  # re-run: reused, not promoted
    assert canonical_ids(res, kit_id) == approved
    with session(res) as s:
        states = {a.review_state for a in repo.list_assets(s, uuid.UUID(kit_id))}
        assert "pending" not in states


def test_bad_review_input_is_refused_and_changes_nothing(res):
    kit_id = kit_with_anchors(res)
    other = kit_with_anchors(res, name="Kenji Default")
    foreign = canonical_ids(res, other)[FULLBODY]
    own = canonical_ids(res, kit_id)[FULLBODY]
    with session(res) as s:
        decisions = len(list_decisions(s))
    with pytest.raises(InvalidReferenceError, match="belongs to kit"), session(res) as s:
        review.accept_candidate(s, kit_id, foreign)
    refused = pytest.raises(InvalidTransitionError, match="choose another candidate")
    with refused, session(res) as s:
        review.reject_candidate(s, kit_id, own)
    with pytest.raises(NotFoundError, match="no pending set"), session(res) as s:
        review.approve_candidate_set(s, kit_id, "prompt-change:nope")
    assert canonical_ids(res, kit_id)[FULLBODY] == own
    assert canonical_ids(res, other)[FULLBODY] == foreign
    with session(res) as s:
        assert len(list_decisions(s)) == decisions


def test_two_people_choosing_at_once_leave_one_canonical_image(
    tmp_path,
    migrated_catalog_url,  # noqa: F811
):
    """Concurrent accept_candidate calls for one slot, on SQLite and PostgreSQL."""
    res = make_resources(tmp_path, database_url=migrated_catalog_url)
    kit_id = kit_with_anchors(res)
    takes = [
        generate(res, kit_id, [FULLBODY], new_take=True, take_token=f"t{i}")[FULLBODY].asset_id
        for i in range(3)
    ]
    factory = res["catalog"].session_factory()
    errors: list[BaseException] = []

    def choose(asset_id: str) -> None:
        try:
            for _ in range(4):
                with session_scope(factory, write=True) as s:
                    review.accept_candidate(s, kit_id, asset_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=choose, args=(a,)) for a in takes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with session(res) as s:
        rows = repo.list_assets(s, uuid.UUID(kit_id))
        canonical = [a for a in rows if repo.slot_of(a) == FULLBODY and a.is_canonical]
        assert len(canonical) == 1 and str(canonical[0].id) in takes
        kit = repo.get_kit(s, uuid.UUID(kit_id))
        assert kit.secondary_anchor_id == canonical[0].id
        accepted = [a for a in rows if a.review_state == "accepted"]
        assert [a.id for a in accepted] == [canonical[0].id]
        assert len([d for d in list_decisions(s, kit_id) if d.decision == "accepted"]) >= 12
