"""Kit administration: CRUD, archive, approval, anchors, active kit, generation requests."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.kit_approval import required_slots_for_approval
from avatar_pipeline.catalog.models import AvatarKit, Character, KitGenerationRequest
from avatar_pipeline.domain.vocab import EXPRESSION_NAMES, POSE_NAMES
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import (
    KIT_PROMPTS,
    counts,
    image_bytes,
    kit_state,
    make_character,
)

REQUIRED = required_slots_for_approval()


def upload_expressions_and_poses(api: Api, kit_id: str, but: str | None = None) -> None:
    """Upload an image for every expression and pose slot (approval needs them all)."""
    for kind, names in (("expression", EXPRESSION_NAMES), ("pose", POSE_NAMES)):
        for name in names:
            if f"{kind}:{name}" != but:
                assert api.upload(kit_id, kind, **{kind: name}).status_code == 201


def test_kit_crud_and_archive(api: Api) -> None:
    kit = api.create_kit(name="Yuki Default", is_default=True)
    assert kit["status"] == "draft" and kit["is_default"] is True
    assert kit["created_by"] == str(api.admin.id)

    listed = api.client.get("/avatar-kits", headers=api.admin.headers).json()
    assert [k["id"] for k in listed] == [kit["id"]]

    patched = api.client.patch(
        f"/avatar-kits/{kit['id']}",
        json={"style_prompt": "watercolour, pastel palette", "description": "summer look"},
        headers=api.admin.headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["style_prompt"] == "watercolour, pastel palette"
    assert body["appearance_prompt"] == KIT_PROMPTS["appearance_prompt"]
    assert body["description"] == "summer look"

    archived = api.client.delete(f"/avatar-kits/{kit['id']}", headers=api.admin.headers)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived" and archived.json()["is_default"] is False
    drafts = api.client.get("/avatar-kits?status=draft", headers=api.admin.headers).json()
    assert drafts == []
    again = api.client.get(f"/avatar-kits/{kit['id']}", headers=api.admin.headers).json()
    assert again["status"] == "archived"


def test_unknown_kit_is_404_and_bad_bodies_are_422(api: Api) -> None:
    missing = api.client.get(f"/avatar-kits/{uuid.uuid4()}", headers=api.admin.headers)
    assert missing.status_code == 404
    assert "no avatar kit with id" in missing.json()["detail"]
    before = counts(api.services.session_factory, api.services.object_store)
    blank = api.client.post(
        "/avatar-kits",
        json={"name": "X", "appearance_prompt": "   ", "style_prompt": "anime"},
        headers=api.admin.headers,
    )
    assert blank.status_code == 422
    assert "appearance_prompt" in blank.text
    unknown_character = api.client.post(
        "/avatar-kits",
        json={"name": "X", **KIT_PROMPTS, "character_id": str(uuid.uuid4())},
        headers=api.admin.headers,
    )
    assert unknown_character.status_code == 404
    extra_field = api.client.patch(
        f"/avatar-kits/{api.create_kit()['id']}",
        json={"primary_anchor_id": str(uuid.uuid4())},
        headers=api.admin.headers,
    )
    assert extra_field.status_code == 422
    after = counts(api.services.session_factory, api.services.object_store)
    assert after == {**before, "avatar_kits": before["avatar_kits"] + 1}


def test_second_default_kit_is_a_conflict(api: Api) -> None:
    api.create_kit(is_default=True)
    response = api.client.post(
        "/avatar-kits",
        json={
            "name": "Second",
            **KIT_PROMPTS,
            "character_id": str(api.character_id),
            "is_default": True,
        },
        headers=api.admin.headers,
    )
    assert response.status_code == 409
    assert "already has a default kit" in response.json()["detail"]


def test_approval_lists_missing_slots_then_succeeds(api: Api) -> None:
    kit = api.create_kit()
    refused = api.client.post(f"/avatar-kits/{kit['id']}/approve", headers=api.admin.headers)
    assert refused.status_code == 409
    # both anchors, every expression and every pose
    assert refused.json()["detail"]["missing_slots"] == list(REQUIRED)
    as_patch = api.client.patch(
        f"/avatar-kits/{kit['id']}", json={"status": "active"}, headers=api.admin.headers
    )
    assert as_patch.status_code == 409
    assert kit_state(api.services.session_factory, kit["id"])["status"] == "draft"

    assert api.upload(kit["id"], "anchor_portrait").status_code == 201
    half = api.client.post(f"/avatar-kits/{kit['id']}/approve", headers=api.admin.headers)
    assert half.json()["detail"]["missing_slots"] == list(REQUIRED[1:])

    assert api.upload(kit["id"], "anchor_fullbody", filename="body.png").status_code == 201
    upload_expressions_and_poses(api, kit["id"], but="pose:walking")
    almost = api.client.post(f"/avatar-kits/{kit['id']}/approve", headers=api.admin.headers)
    assert almost.json()["detail"]["missing_slots"] == ["pose:walking"]
    assert api.upload(kit["id"], "pose", pose="walking").status_code == 201
    approved = api.client.post(f"/avatar-kits/{kit['id']}/approve", headers=api.admin.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"


def test_anchor_setting_rules(api: Api) -> None:
    kit = api.create_kit()
    other_kit = api.create_kit()
    first = api.upload(kit["id"]).json()["asset"]
    second = api.upload(kit["id"], data=image_bytes(color=(10, 200, 30))).json()["asset"]
    foreign = api.upload(other_kit["id"]).json()["asset"]
    expression = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    state = kit_state(api.services.session_factory, kit["id"])
    assert state["primary_anchor_id"] == uuid.UUID(first["id"])

    for asset_id in (foreign["id"], expression["id"]):
        refused = api.client.patch(
            f"/avatar-kits/{kit['id']}/primary-anchor",
            json={"asset_id": asset_id},
            headers=api.admin.headers,
        )
        assert refused.status_code == 422, refused.text
        assert asset_id in refused.json()["detail"]
        assert kit_state(api.services.session_factory, kit["id"]) == state

    missing = api.client.patch(
        f"/avatar-kits/{kit['id']}/primary-anchor",
        json={"asset_id": str(uuid.uuid4())},
        headers=api.admin.headers,
    )
    assert missing.status_code == 404

    switched = api.client.patch(
        f"/avatar-kits/{kit['id']}/primary-anchor",
        json={"asset_id": second["id"]},
        headers=api.admin.headers,
    )
    assert switched.status_code == 200
    assert switched.json()["primary_anchor_id"] == second["id"]
    assets = api.client.get(f"/avatar-kits/{kit['id']}/assets", headers=api.admin.headers).json()
    canonical = {a["id"]: a["is_canonical"] for a in assets}
    assert canonical[second["id"]] is True and canonical[first["id"]] is False

    wrong_type = api.client.patch(
        f"/avatar-kits/{kit['id']}/secondary-anchor",
        json={"asset_id": second["id"]},
        headers=api.admin.headers,
    )
    assert wrong_type.status_code == 422
    body = api.upload(kit["id"], "anchor_fullbody").json()["asset"]
    secondary = api.client.patch(
        f"/avatar-kits/{kit['id']}/secondary-anchor",
        json={"asset_id": body["id"]},
        headers=api.admin.headers,
    )
    assert secondary.json()["secondary_anchor_id"] == body["id"]


def test_active_kit_switching(api: Api) -> None:
    default = api.create_kit(name="Yuki Default")
    summer = api.create_kit(name="Yuki Summer")
    stranger = make_character(api.services.session_factory, "Kenji")
    kenji_kit = api.create_kit(character_id=stranger, name="Kenji Default")
    path = f"/characters/{api.character_id}/active-kit"

    draft = api.client.patch(path, json={"avatar_kit_id": default["id"]}, headers=api.admin.headers)
    assert draft.status_code == 409  # never approved: cannot be the active kit (api_load)
    assert "only an approved ('active') kit" in draft.json()["detail"]
    with session_scope(api.services.session_factory) as session:
        for kit in (default, summer):  # approved (approval itself is tested elsewhere)
            session.get(AvatarKit, uuid.UUID(kit["id"])).status = "active"  # type: ignore[union-attr]

    for kit in (default, summer):
        response = api.client.patch(
            path, json={"avatar_kit_id": kit["id"]}, headers=api.admin.headers
        )
        assert response.status_code == 200
        assert response.json()["active_avatar_kit_id"] == kit["id"]

    foreign = api.client.patch(
        path, json={"avatar_kit_id": kenji_kit["id"]}, headers=api.admin.headers
    )
    assert foreign.status_code == 422
    assert "belongs to character" in foreign.json()["detail"]

    api.client.delete(f"/avatar-kits/{default['id']}", headers=api.admin.headers)
    archived = api.client.patch(
        path, json={"avatar_kit_id": default["id"]}, headers=api.admin.headers
    )
    assert archived.status_code == 409
    with session_scope(api.services.session_factory) as session:
        assert session.get(Character, api.character_id).active_avatar_kit_id == uuid.UUID(
            summer["id"]
        )

    listed = api.client.get(
        f"/characters/{api.character_id}/avatar-kits", headers=api.admin.headers
    )
    assert {k["name"] for k in listed.json()} == {"Yuki Default", "Yuki Summer"}

    cleared = api.client.patch(path, json={"avatar_kit_id": None}, headers=api.admin.headers)
    assert cleared.json()["active_avatar_kit_id"] is None


def test_generation_requests_are_written_for_the_sensor(api: Api) -> None:
    kit = api.create_kit()
    anchors = api.client.post(
        f"/avatar-kits/{kit['id']}/generate-anchors", headers=api.admin.headers
    )
    expressions = api.client.post(
        f"/avatar-kits/{kit['id']}/generate-expressions",
        json={"slots": ["expression:happy", "expression:shy"]},
        headers=api.admin.headers,
    )
    assert anchors.status_code == 202 and expressions.status_code == 202
    with session_scope(api.services.session_factory) as session:
        rows = {
            str(r.id): (r.scope, r.slots, r.status, r.requested_by)
            for r in session.scalars(select(KitGenerationRequest))
        }
    assert rows == {
        anchors.json()["id"]: ("anchors", None, "pending", api.admin.id),
        expressions.json()["id"]: (
            "expressions",
            ["expression:happy", "expression:shy"],
            "pending",
            api.admin.id,
        ),
    }
    before = counts(api.services.session_factory, api.services.object_store)
    bad_slot = api.client.post(
        f"/avatar-kits/{kit['id']}/generate-expressions",
        json={"slots": ["expression:../../etc"]},
        headers=api.admin.headers,
    )
    assert bad_slot.status_code == 422
    missing = api.client.post(
        f"/avatar-kits/{uuid.uuid4()}/generate-anchors", headers=api.admin.headers
    )
    assert missing.status_code == 404
    api.client.delete(f"/avatar-kits/{kit['id']}", headers=api.admin.headers)
    archived = api.client.post(
        f"/avatar-kits/{kit['id']}/generate-anchors", headers=api.admin.headers
    )
    assert archived.status_code == 409
    assert counts(api.services.session_factory, api.services.object_store) == before


def test_review_page_shows_the_model_sheet_escaped(api: Api) -> None:
    kit = api.create_kit(name="<script>alert(1)</script> Yuki")
    anchor = api.upload(kit["id"]).json()["asset"]
    page = api.client.get(f"/review/avatar-kits/{kit['id']}", headers=api.admin.headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Yuki" in page.text and "<script>" not in page.text
    assert anchor["id"] in page.text and "primary anchor" in page.text
    assert "missing anchor_fullbody" in page.text
    forbidden = api.client.get(f"/review/avatar-kits/{kit['id']}", headers=api.user.headers)
    assert forbidden.status_code == 403
