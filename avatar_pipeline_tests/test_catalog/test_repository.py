"""Repository behaviour: canonical promotion, approval, assets, requests and scenes."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import (
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
    InvalidTransitionError,
    NotFoundError,
)
from avatar_pipeline.catalog.models import AvatarAsset
from avatar_pipeline.domain.prompts import InvalidPromptError
from avatar_pipeline.domain.vocab import EXPRESSION_NAMES, POSE_NAMES
from avatar_pipeline_tests.test_catalog.utils import add_asset, make_character, make_kit


def _canonical_ids(session: Session, kit_id: uuid.UUID) -> set[uuid.UUID]:
    session.expire_all()
    query = select(AvatarAsset.id).where(
        AvatarAsset.avatar_kit_id == kit_id, AvatarAsset.is_canonical.is_(True)
    )
    return set(session.scalars(query))


def test_promote_keeps_one_canonical_per_slot_and_sets_anchors(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    old_portrait, new_portrait = add_asset(catalog_session, kit), add_asset(catalog_session, kit)
    fullbody = add_asset(catalog_session, kit, "anchor_fullbody")
    happy_1 = add_asset(catalog_session, kit, "expression", expression="happy")
    happy_2 = add_asset(catalog_session, kit, "expression", expression="happy")
    shy = add_asset(catalog_session, kit, "expression", expression="shy")
    sitting = add_asset(catalog_session, kit, "pose", pose="sitting")

    repo.promote_to_canonical(catalog_session, [old_portrait.id, happy_1.id, shy.id])
    repo.promote_to_canonical(
        catalog_session, [new_portrait.id, fullbody.id, happy_2.id, sitting.id]
    )
    catalog_session.commit()

    assert _canonical_ids(catalog_session, kit.id) == {
        new_portrait.id,
        fullbody.id,
        happy_2.id,
        shy.id,
        sitting.id,
    }
    kit = repo.get_kit(catalog_session, kit.id)
    assert (kit.primary_anchor_id, kit.secondary_anchor_id) == (new_portrait.id, fullbody.id)
    slots = repo.canonical_assets(catalog_session, kit.id)
    assert {slot: a.id for slot, a in slots.items()} == {
        "anchor_portrait": new_portrait.id,
        "anchor_fullbody": fullbody.id,
        "expression:happy": happy_2.id,
        "expression:shy": shy.id,
        "pose:sitting": sitting.id,
    }
    assert [repo.slot_of(a) for a in (happy_1, sitting)] == ["expression:happy", "pose:sitting"]


def test_promote_with_an_invalid_id_changes_nothing(catalog_session: Session) -> None:
    kit, other = make_kit(catalog_session), make_kit(catalog_session)
    portrait, happy = add_asset(catalog_session, kit), add_asset(catalog_session, kit, "expression")
    foreign = add_asset(catalog_session, other)
    happy_again = add_asset(catalog_session, kit, "expression", expression="happy")
    catalog_session.commit()

    with pytest.raises(NotFoundError):
        repo.promote_to_canonical(catalog_session, [portrait.id, uuid.uuid4()])
    with pytest.raises(InvalidReferenceError, match="2 kits"):
        repo.promote_to_canonical(catalog_session, [portrait.id, foreign.id])
    with pytest.raises(ConflictError, match="expression:happy"):
        repo.promote_to_canonical(catalog_session, [happy.id, happy_again.id])
    repo.deactivate_asset(catalog_session, happy.id)
    with pytest.raises(InvalidReferenceError, match="deactivated"):
        repo.promote_to_canonical(catalog_session, [portrait.id, happy.id])
    catalog_session.commit()
    assert _canonical_ids(catalog_session, kit.id) == set()
    assert repo.get_kit(catalog_session, kit.id).primary_anchor_id is None


def test_approve_needs_canonical_anchors(catalog_session: Session) -> None:
    kit = make_kit(catalog_session, name="Yuki Default")
    with pytest.raises(InvalidTransitionError) as caught:
        repo.approve_kit(catalog_session, kit.id)
    message = str(caught.value)
    assert "anchor_portrait" in message and "anchor_fullbody" in message
    assert "primary anchor" in message and "Yuki Default" in message

    portrait = add_asset(catalog_session, kit)
    repo.set_primary_anchor(catalog_session, kit.id, portrait.id)
    with pytest.raises(InvalidTransitionError, match="anchor_fullbody") as caught:
        repo.update_kit(catalog_session, kit.id, status="active")
    assert "anchor_portrait" not in str(caught.value)
    assert repo.get_kit(catalog_session, kit.id).status == "draft"

    fullbody = add_asset(catalog_session, kit, "anchor_fullbody", is_canonical=True)
    assert repo.get_kit(catalog_session, kit.id).secondary_anchor_id == fullbody.id
    # every expression and pose is required too; pending candidates that failed no check count
    with pytest.raises(InvalidTransitionError, match="expression:neutral") as caught:
        repo.approve_kit(catalog_session, kit.id)
    assert "pose:walking" in str(caught.value) and "anchor_" not in str(caught.value)

    unmeasured = {
        "status": "unmeasured",
        "verdicts": {
            "identity": {"verdict": "pass", "why": "", "required": True},
            "adherence": {"verdict": "unmeasured", "why": "no text tower", "required": True},
        },
    }
    failed = {
        "status": "fail",
        "verdicts": {"identity": {"verdict": "fail", "why": "0.41 < 0.78", "required": True}},
    }
    pending = {}
    for kind, names in (("expression", EXPRESSION_NAMES), ("pose", POSE_NAMES)):
        for name in names:
            pending[f"{kind}:{name}"] = add_asset(
                catalog_session,
                kit,
                kind,
                **{kind: name},
                review_state="pending",
                generation_metadata={"consistency": unmeasured},
            )
    canonical_happy = add_asset(catalog_session, kit, "expression", expression="happy")
    repo.promote_to_canonical(catalog_session, [canonical_happy.id])
    # a newer candidate that failed a check is never promoted by approval
    add_asset(
        catalog_session,
        kit,
        "pose",
        pose="waving",
        review_state="pending",
        generation_metadata={"consistency": failed},
    )
    # one slot still empty: refused, and nothing was promoted
    repo.update_asset(catalog_session, pending["pose:sitting"].id, is_active=False)
    with pytest.raises(InvalidTransitionError, match="pose:sitting"):
        repo.approve_kit(catalog_session, kit.id)
    assert set(repo.canonical_assets(catalog_session, kit.id)) == {
        "anchor_portrait",
        "anchor_fullbody",
        "expression:happy",
    }
    assert repo.get_kit(catalog_session, kit.id).status == "draft"

    repo.update_asset(catalog_session, pending["pose:sitting"].id, is_active=True)
    assert repo.approve_kit(catalog_session, kit.id).status == "active"
    canonical = repo.canonical_assets(catalog_session, kit.id)
    assert set(canonical) == set(repo.required_slots_for_approval())
    assert canonical["expression:happy"].id == canonical_happy.id  # a canonical one stays
    assert canonical["pose:waving"].id == pending["pose:waving"].id  # not the failed one
    assert canonical["pose:sitting"].review_state == "accepted"

    repo.archive_kit(catalog_session, kit.id)
    with pytest.raises(InvalidTransitionError, match="archived"):
        repo.approve_kit(catalog_session, kit.id)


def test_deactivating_an_anchor_clears_the_pointer(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    portrait = add_asset(catalog_session, kit, is_canonical=True)
    assert repo.get_kit(catalog_session, kit.id).primary_anchor_id == portrait.id
    repo.deactivate_asset(catalog_session, portrait.id)
    catalog_session.commit()
    catalog_session.expire_all()
    assert repo.get_kit(catalog_session, kit.id).primary_anchor_id is None
    assert repo.list_assets(catalog_session, kit.id) == []
    assert [a.id for a in repo.list_assets(catalog_session, kit.id, include_inactive=True)] == [
        portrait.id
    ]
    assert repo.canonical_assets(catalog_session, kit.id) == {}


def test_updated_at_changes_on_update(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    catalog_session.commit()
    created, first = kit.created_at, kit.updated_at
    old_hash = repo.kit_prompts(kit).prompt_hash
    time.sleep(0.01)
    repo.update_kit(catalog_session, kit.id, style_prompt="watercolour, soft edges")
    catalog_session.commit()
    catalog_session.expire_all()
    reloaded = repo.get_kit(catalog_session, kit.id)
    assert reloaded.updated_at > first
    assert reloaded.created_at == created
    assert reloaded.style_prompt == "watercolour, soft edges"
    assert repo.kit_prompts(reloaded).prompt_hash != old_hash


def test_emotion_tags_and_metadata_round_trip(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    happy = add_asset(
        catalog_session,
        kit,
        "expression",
        expression="happy",
        emotion_tags=["joy", "excitement"],
        generation_metadata={"fingerprint": "abc", "cost_usd": 0.03, "refs": ["x"]},
    )
    catalog_session.commit()
    catalog_session.expire_all()
    reloaded = repo.get_asset(catalog_session, happy.id)
    assert reloaded.emotion_tags == ["joy", "excitement"]
    assert isinstance(reloaded.emotion_tags, list)
    assert reloaded.generation_metadata == {"fingerprint": "abc", "cost_usd": 0.03, "refs": ["x"]}
    repo.update_asset(catalog_session, happy.id, emotion_tags=["amusement"])
    reloaded.generation_metadata["reviewed"] = True  # in-place changes are tracked
    catalog_session.commit()
    catalog_session.expire_all()
    reloaded = repo.get_asset(catalog_session, happy.id)
    assert reloaded.emotion_tags == ["amusement"]
    assert reloaded.generation_metadata["reviewed"] is True


def test_fingerprint_lookup_and_cost(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    add_asset(catalog_session, kit, generation_metadata={"fingerprint": "f1", "cost_usd": 0.04})
    second = add_asset(
        catalog_session,
        kit,
        "anchor_fullbody",
        generation_metadata={"fingerprint": "f2", "cost_usd": 0.05},
    )
    add_asset(catalog_session, kit, "expression", generation_metadata={"provider": "offline"})
    assert repo.find_asset_by_fingerprint(catalog_session, kit.id, "f2").id == second.id
    assert repo.find_asset_by_fingerprint(catalog_session, kit.id, "nope") is None
    repo.deactivate_asset(catalog_session, second.id)
    assert repo.find_asset_by_fingerprint(catalog_session, kit.id, "f2") is None
    assert repo.kit_total_cost(catalog_session, kit.id) == pytest.approx(0.09)


def test_register_asset_validates_slots_and_lineage(catalog_session: Session) -> None:
    kit, other = make_kit(catalog_session), make_kit(catalog_session)
    foreign = add_asset(catalog_session, other)
    with pytest.raises(ConstraintViolationError, match="need an expression") as caught:
        repo.register_asset(
            catalog_session,
            kit_id=kit.id,
            asset_type="expression",
            storage_path=f"{kit.id}/expressions/x.png",
            source_type="ai_generated",
        )
    assert caught.value.constraint == "expression_required"
    with pytest.raises(ConstraintViolationError, match="pose assets need a pose"):
        add_asset(catalog_session, kit, "pose", pose="")
    with pytest.raises(ConstraintViolationError, match="lower-case"):
        add_asset(
            catalog_session, kit, "expression", expression="Big Smile", storage_path="a/b.png"
        )
    with pytest.raises(InvalidReferenceError, match="its own kit"):
        add_asset(catalog_session, kit, "expression", derived_from_id=foreign.id)
    with pytest.raises(NotFoundError, match="avatar kit"):
        repo.register_asset(
            catalog_session,
            kit_id=uuid.uuid4(),
            asset_type="anchor_portrait",
            storage_path="x/y.png",
            source_type="imported",
        )
    with pytest.raises(ValueError, match="relative"):
        add_asset(catalog_session, kit, storage_path="/etc/passwd")
    assert repo.list_assets(catalog_session, kit.id, include_inactive=True) == []


def test_kit_crud(catalog_session: Session) -> None:
    admin = repo.create_user(catalog_session, email="admin@example.com", role="admin")
    character = make_character(catalog_session)
    kit = make_kit(catalog_session, character, created_by=admin.id, is_default=True)
    repo.set_active_kit(catalog_session, character.id, kit.id)
    summer = make_kit(catalog_session, character, name="Summer")
    draft_elsewhere = make_kit(catalog_session)
    assert [k.id for k in repo.list_kits(catalog_session, character_id=character.id)] == [
        kit.id,
        summer.id,
    ]
    assert len(repo.list_kits(catalog_session, status="draft")) == 3
    with pytest.raises(ValueError, match="cannot change \\['character_id'\\]"):
        repo.update_kit(catalog_session, kit.id, character_id=None)
    with pytest.raises(InvalidPromptError, match="appearance_prompt"):
        repo.update_kit(catalog_session, kit.id, appearance_prompt="  ")
    with pytest.raises(InvalidPromptError):
        make_kit(catalog_session, style_prompt="")
    with pytest.raises(InvalidTransitionError, match="draft"):
        make_kit(catalog_session, status="active")
    with pytest.raises(ConstraintViolationError, match="without a character_id"):
        make_kit(catalog_session, is_default=True)
    with pytest.raises(ConstraintViolationError, match="no character"):
        repo.update_kit(catalog_session, draft_elsewhere.id, is_default=True)

    archived = repo.update_kit(catalog_session, kit.id, status="archived")
    assert (archived.status, archived.is_default) == ("archived", False)
    catalog_session.expire_all()
    assert repo.get_character(catalog_session, character.id).active_avatar_kit_id is None
    assert repo.update_kit(catalog_session, summer.id, is_default=True).is_default is True
    assert [k.id for k in repo.list_kits(catalog_session, status="archived")] == [kit.id]


def test_generation_requests(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    first = repo.request_generation(catalog_session, kit_id=kit.id)
    second = repo.request_generation(
        catalog_session, kit_id=kit.id, scope="expressions", slots=["expression:happy"]
    )
    with pytest.raises(ConstraintViolationError, match="scope"):
        repo.request_generation(catalog_session, kit_id=kit.id, scope="everything")
    with pytest.raises(ConstraintViolationError, match="unknown slot names"):
        repo.request_generation(catalog_session, kit_id=kit.id, slots=["happy"])
    catalog_session.commit()
    assert [r.id for r in repo.pending_generation_requests(catalog_session)] == [
        first.id,
        second.id,
    ]
    assert second.slots == ["expression:happy"]
    repo.mark_generation_request(catalog_session, first.id, "picked")
    repo.mark_generation_request(catalog_session, first.id, "done")
    with pytest.raises(InvalidTransitionError, match="'done'"):
        repo.mark_generation_request(catalog_session, first.id, "pending")
    assert [r.id for r in repo.pending_generation_requests(catalog_session)] == [second.id]


def test_scenes_are_private_to_their_user(catalog_session: Session) -> None:
    alice = repo.create_user(catalog_session, email="alice@example.com")
    bob = repo.create_user(catalog_session, email="bob@example.com")
    character = make_character(catalog_session)
    kit = make_kit(catalog_session, character)
    anchor = add_asset(catalog_session, kit)
    episode = repo.create_episode(
        catalog_session, character_id=character.id, user_id=alice.id, title="Cafe"
    )
    scene_id = uuid.uuid4()
    scene = repo.create_scene_image(
        catalog_session,
        scene_id=scene_id,
        user_id=alice.id,
        episode_id=episode.id,
        storage_path=f"{alice.id}/{episode.id}/{scene_id}.png",
        prompt="Yuki at the cafe",
        derived_from_asset_id=anchor.id,
    )
    assert (scene.id, scene.avatar_kit_id, scene.storage_bucket) == (scene_id, kit.id, "scenes")
    with pytest.raises(NotFoundError, match="episode"):
        repo.create_scene_image(
            catalog_session,
            user_id=bob.id,
            episode_id=episode.id,
            storage_path="b/e/s.png",
            prompt="x",
        )
    assert [s.id for s in repo.list_episode_scenes(
        catalog_session, user_id=alice.id, episode_id=episode.id
    )] == [scene_id]  # fmt: skip
    with pytest.raises(NotFoundError):
        repo.list_episode_scenes(catalog_session, user_id=bob.id, episode_id=episode.id)
    with pytest.raises(NotFoundError, match="scene"):
        repo.set_scene_memory(catalog_session, scene_id=scene_id, user_id=bob.id, is_memory=True)
    assert repo.list_memories(catalog_session, user_id=alice.id) == []
    repo.set_scene_memory(catalog_session, scene_id=scene_id, user_id=alice.id, is_memory=True)
    catalog_session.commit()
    assert [s.id for s in repo.list_memories(catalog_session, user_id=alice.id)] == [scene_id]
    assert repo.list_memories(catalog_session, user_id=bob.id) == []
