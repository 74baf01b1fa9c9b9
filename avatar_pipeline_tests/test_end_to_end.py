"""The catalog is the contract between the API and the pipeline, end to end:

API creates a kit and asks for it -> kit_sensor requests the run -> Dagster produces the kit ->
the API approves it -> a user's scene for a joyful moment is an edit of the kit's canonical
"happy" expression, stored under the user's scenes and served through a signed URL.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
from fastapi.testclient import TestClient

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.sensors import kit_sensor
from avatar_pipeline.serving.config import build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline_tests.kit_runs import materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import make_resources
from avatar_pipeline_tests.test_serving.conftest import BASE_URL, make_settings
from avatar_pipeline_tests.test_serving.factories import make_character, make_episode, make_person


def test_api_kit_to_pipeline_to_scene(tmp_path: Path):
    database_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    settings = make_settings(tmp_path, database_url)
    services = build_services(settings, migrate=True)
    factory = services.session_factory
    admin = make_person(settings, factory, "admin")
    user = make_person(settings, factory, "user")
    character_id = make_character(factory, "Mickey")
    episode_id = make_episode(factory, character_id, user.id)
    pipeline = make_resources(tmp_path, database_url)  # same catalog, same object store root

    with TestClient(create_app(settings, services=services), base_url=BASE_URL) as client:
        created = client.post(
            "/avatar-kits",
            headers=admin.headers,
            json={
                "name": "Mickey Default",
                "character_id": str(character_id),
                "appearance_prompt": "young woman, short pink hair, blue eyes, red hoodie",
                "style_prompt": "anime style, cel shading",
                "negative_prompt": "photorealistic",
            },
        )
        assert created.status_code == 201, created.text
        kit_id = created.json()["id"]
        assert (
            client.post(f"/avatar-kits/{kit_id}/approve", headers=admin.headers).status_code == 409
        )

        # the pipeline side: the sensor sees the new kit, Dagster produces it
        with dg.instance_for_test() as instance:
            with dg.build_sensor_context(
                instance=instance, resources={"catalog": pipeline["catalog"]}
            ) as context:
                result = kit_sensor(context)
            (run,) = result.run_requests
            assert run.partition_key == kit_id
            assert materialize_kit(pipeline, instance, kit_id).success

        approved = client.post(f"/avatar-kits/{kit_id}/approve", headers=admin.headers)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "active"
        chosen = client.patch(
            f"/characters/{character_id}/active-kit",
            headers=admin.headers,
            json={"avatar_kit_id": kit_id},
        )
        assert chosen.status_code == 200, chosen.text

        scene = client.post(
            "/scenes/generate",
            headers=user.headers,
            json={
                "episode_id": str(episode_id),
                "moment": "laughing at a joke over coffee in a small cafe",
                "emotion": "joy",
                "width": 384,
                "height": 384,
            },
        )
        assert scene.status_code == 201, scene.text
        body = scene.json()
        with session_scope(factory) as session:
            happy = repo.canonical_assets(session, uuid.UUID(kit_id))["expression:happy"]
        assert body["avatar_kit_id"] == kit_id
        assert body["derived_from_asset_id"] == str(happy.id)
        assert body["storage_path"] == f"{user.id}/{episode_id}/{body['id']}.png"
        image = client.get(body["url"].removeprefix(BASE_URL))
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    services.close()
