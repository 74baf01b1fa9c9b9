"""The whole admin -> scene path on both catalog engines (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import counts, image_bytes, kit_state
from avatar_pipeline_tests.test_serving.test_kits import upload_expressions_and_poses


def test_kit_to_scene_round_trip(api_any_db: Api) -> None:
    api = api_any_db
    admin = api.admin.headers
    kit = api.create_kit(is_default=True)
    portrait = api.upload(kit["id"]).json()
    assert portrait["became_anchor"] == "primary"
    fullbody = api.upload(kit["id"], "anchor_fullbody", data=image_bytes(size=(256, 512))).json()
    assert fullbody["became_anchor"] == "secondary"
    happy = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    upload_expressions_and_poses(api, kit["id"], but="expression:happy")  # approval needs all

    approved = api.client.post(f"/avatar-kits/{kit['id']}/approve", headers=admin)
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    switched = api.client.patch(
        f"/characters/{api.character_id}/active-kit",
        json={"avatar_kit_id": kit["id"]},
        headers=admin,
    )
    assert switched.status_code == 200

    before = counts(api.services.session_factory, api.services.object_store)
    rejected = api.upload(kit["id"], data=image_bytes("GIF"))
    assert rejected.status_code == 422
    foreign = api.client.patch(
        f"/avatar-kits/{kit['id']}/primary-anchor",
        json={"asset_id": happy["id"]},
        headers=admin,
    )
    assert foreign.status_code == 422
    assert counts(api.services.session_factory, api.services.object_store) == before
    assert kit_state(api.services.session_factory, kit["id"])["primary_anchor_id"] == uuid.UUID(
        portrait["asset"]["id"]
    )

    response = api.client.post(
        "/scenes/generate",
        json={
            "episode_id": str(api.episode_id),
            "moment": "laughing at a joke in the cafe",
            "emotion": "joy",
            "width": 256,
            "height": 256,
        },
        headers=api.user.headers,
    )
    assert response.status_code == 201, response.text
    scene = response.json()
    with session_scope(api.services.session_factory) as session:
        row = session.get(SceneImage, uuid.UUID(scene["id"]))
        assert row is not None
        assert (row.avatar_kit_id, row.derived_from_asset_id) == (
            uuid.UUID(kit["id"]),
            uuid.UUID(happy["id"]),
        )
    saved = api.client.patch(
        f"/scenes/{scene['id']}/memory", json={"is_memory": True}, headers=api.user.headers
    )
    assert saved.status_code == 200
    memories = api.client.get("/scenes/memories", headers=api.user.headers).json()
    assert [m["id"] for m in memories] == [scene["id"]]
    assert api.client.get(scene["url"]).status_code == 200
    assert (
        api.client.get(f"/scenes/episode/{api.episode_id}", headers=api.other.headers).status_code
        == 404
    )
